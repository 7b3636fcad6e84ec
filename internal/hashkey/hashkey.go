package hashkey

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"math/big"
	"math/bits"
	"strconv"
	"unsafe"
)

// Key is a 128-bit hash key. Hi holds the most significant 64 bits.
type Key struct {
	Hi, Lo uint64
}

// Max is the largest hash key, 2^128-1.
var Max = Key{Hi: ^uint64(0), Lo: ^uint64(0)}

// ErrInvalid reports a string that is not a decimal hash key in 0 .. 2^128-1.
var ErrInvalid = errors.New("hashkey: not a decimal integer in [0, 2^128-1]")

// FromPartitionKey returns the hash key of a partition key: MD5 of its UTF-8
// bytes read as a big-endian unsigned integer.
func FromPartitionKey(pk string) Key {
	// md5.Sum only reads its argument: hashing the string's bytes in place
	// saves the copy, which is an allocation for a key longer than 32 bytes
	// (a UUID key is 36).
	sum := md5.Sum(unsafe.Slice(unsafe.StringData(pk), len(pk)))
	return FromBytes(sum)
}

// FromBytes reads a 16-byte big-endian integer.
func FromBytes(b [16]byte) Key {
	return Key{Hi: binary.BigEndian.Uint64(b[:8]), Lo: binary.BigEndian.Uint64(b[8:])}
}

// Cmp returns -1, 0 or +1 as k is less than, equal to or greater than o.
func (k Key) Cmp(o Key) int {
	switch {
	case k.Hi < o.Hi:
		return -1
	case k.Hi > o.Hi:
		return 1
	case k.Lo < o.Lo:
		return -1
	case k.Lo > o.Lo:
		return 1
	}
	return 0
}

// Add returns k+o, and whether the sum overflowed 128 bits.
func (k Key) Add(o Key) (Key, bool) {
	lo, c := bits.Add64(k.Lo, o.Lo, 0)
	hi, c := bits.Add64(k.Hi, o.Hi, c)
	return Key{Hi: hi, Lo: lo}, c != 0
}

// Sub returns k-o, and whether it borrowed (o > k).
func (k Key) Sub(o Key) (Key, bool) {
	lo, b := bits.Sub64(k.Lo, o.Lo, 0)
	hi, b := bits.Sub64(k.Hi, o.Hi, b)
	return Key{Hi: hi, Lo: lo}, b != 0
}

// Big returns k as a big.Int.
func (k Key) Big() *big.Int {
	b := new(big.Int).SetUint64(k.Hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(k.Lo))
}

// String formats k in decimal, as Kinesis writes hash keys.
func (k Key) String() string {
	return FormatUint128(k.Hi, k.Lo)
}

// Parse reads a decimal hash key. It accepts exactly what Kinesis accepts for
// ExplicitHashKey and HashKeyRange values: 0|[1-9][0-9]{0,38}, below 2^128.
func Parse(s string) (Key, error) {
	hi, lo, err := ParseUint128(s)
	if err != nil {
		return Key{}, err
	}
	return Key{Hi: hi, Lo: lo}, nil
}

// SplitEvenly divides the whole hash key space into n contiguous ranges of
// (nearly) equal size, as CreateStream does, and returns each range's start
// and end (inclusive). The last range absorbs the remainder. n must be >= 1.
func SplitEvenly(n int) (starts, ends []Key) {
	if n < 1 {
		n = 1
	}
	// size = floor(2^128 / n), computed as floor((2^128-1)/n) adjusted.
	total := new(big.Int).Lsh(big.NewInt(1), 128)
	size := new(big.Int).Div(total, big.NewInt(int64(n)))
	cur := new(big.Int)
	for i := 0; i < n; i++ {
		start := fromBig(cur)
		next := new(big.Int).Add(cur, size)
		var end Key
		if i == n-1 {
			end = Max
		} else {
			end = fromBig(new(big.Int).Sub(next, big.NewInt(1)))
		}
		starts = append(starts, start)
		ends = append(ends, end)
		cur = next
	}
	return starts, ends
}

func fromBig(b *big.Int) Key {
	var buf [16]byte
	b.FillBytes(buf[:])
	return FromBytes(buf)
}

// FormatUint128 formats the 128-bit unsigned integer hi<<64|lo in decimal
// without allocating more than the result.
func FormatUint128(hi, lo uint64) string {
	if hi == 0 {
		return strconv.FormatUint(lo, 10)
	}
	var buf [39]byte
	return string(AppendUint128(buf[:0], hi, lo))
}

// AppendUint128 appends the decimal form of hi<<64|lo to b.
func AppendUint128(b []byte, hi, lo uint64) []byte {
	if hi == 0 {
		return strconv.AppendUint(b, lo, 10)
	}
	// Split into base-1e19 chunks: top (at most 2 digits, as 2^128 < 1e39),
	// mid and low (19 digits each).
	const chunk = 1e19 // largest power of ten below 2^64
	qhi, r := bits.Div64(0, hi, chunk)
	qlo, low := bits.Div64(r, lo, chunk)
	// The quotient qhi<<64|qlo is below 2^128/1e19 < 4e19 (qhi is 0 or 1).
	top, mid := bits.Div64(qhi, qlo, chunk)
	if top != 0 {
		b = strconv.AppendUint(b, top, 10)
		b = append19(b, mid)
	} else {
		b = strconv.AppendUint(b, mid, 10)
	}
	return append19(b, low)
}

// append19 appends v < 1e19 as exactly 19 digits, leading zeros included.
func append19(b []byte, v uint64) []byte {
	var d [19]byte
	for i := 18; i > 0; i -= 2 {
		q := v / 100
		r := v - q*100
		d[i], d[i-1] = digits2[2*r+1], digits2[2*r]
		v = q
	}
	d[0] = byte('0' + v)
	return append(b, d[:]...)
}

const digits2 = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// ParseUint128 parses a canonical decimal (no sign, no leading zeros except
// "0" itself, at most 39 digits) into a 128-bit unsigned integer.
func ParseUint128(s string) (hi, lo uint64, err error) {
	if len(s) == 0 || len(s) > 39 || (len(s) > 1 && s[0] == '0') {
		return 0, 0, ErrInvalid
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, 0, ErrInvalid
		}
		// (hi,lo) = (hi,lo)*10 + d
		h1, l1 := bits.Mul64(lo, 10)
		h2, l2 := bits.Mul64(hi, 10)
		if h2 != 0 {
			return 0, 0, ErrInvalid
		}
		nhi, carry := bits.Add64(l2, h1, 0)
		if carry != 0 {
			return 0, 0, ErrInvalid
		}
		nlo, carry := bits.Add64(l1, uint64(c-'0'), 0)
		nhi, carry = bits.Add64(nhi, 0, carry)
		if carry != 0 {
			return 0, 0, ErrInvalid
		}
		hi, lo = nhi, nlo
	}
	return hi, lo, nil
}

// Range is a shard's inclusive hash key range, used to tell whether a user
// record of a KPL aggregate belongs to the shard that delivered it. The
// zero Range is unknown and holds every key.
type Range struct {
	start, end Key
	known      bool
}

// ParseRange returns the range [start, end] of two decimal hash keys, or
// the unknown Range (which holds every key) when either does not parse or
// start > end.
func ParseRange(start, end string) Range {
	s, err1 := Parse(start)
	e, err2 := Parse(end)
	if err1 != nil || err2 != nil || s.Cmp(e) > 0 {
		return Range{}
	}
	return Range{start: s, end: e, known: true}
}

// Known reports whether r is a parsed range rather than the unknown one.
func (r Range) Known() bool { return r.known }

// HoldsRecord reports whether a record's hash key is in r: its explicit
// hash key if it has one, else the MD5 of its partition key. The unknown
// Range holds every record, and so does r for an explicit hash key that does
// not parse: Kinesis would not have accepted it, so there is no range to
// judge it by, and dropping data on a guess is worse than delivering it.
func (r Range) HoldsRecord(partitionKey, explicitHashKey string) bool {
	if !r.known {
		return true
	}
	var k Key
	if explicitHashKey != "" {
		var err error
		if k, err = Parse(explicitHashKey); err != nil {
			return true
		}
	} else {
		k = FromPartitionKey(partitionKey)
	}
	return k.Cmp(r.start) >= 0 && k.Cmp(r.end) <= 0
}
