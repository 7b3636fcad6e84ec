package seqnum

import (
	"errors"

	"github.com/shoalstream/shoal/internal/hashkey"
)

// Version is the layout version this package writes.
const Version = 1

// MaxOffset is the first batch offset that cannot be encoded.
const MaxOffset = 1 << 56

// ErrInvalid reports a string that is not a shoal sequence number.
var ErrInvalid = errors.New("seqnum: not a valid sequence number")

// Number is a decoded sequence number.
type Number struct {
	Shard  uint32 // shard index
	Offset uint64 // logical byte offset of the batch, < MaxOffset
	Index  uint16 // record index within the batch
	Epoch  uint16 // tag of the stream incarnation
}

// Less reports whether n orders before o within one shard of one stream.
func (n Number) Less(o Number) bool {
	if n.Shard != o.Shard {
		return n.Shard < o.Shard
	}
	if n.Offset != o.Offset {
		return n.Offset < o.Offset
	}
	return n.Index < o.Index
}

// words returns the 128-bit value as two 64-bit words.
func (n Number) words() (hi, lo uint64) {
	hi = 1<<63 | uint64(Version)<<56 | uint64(n.Shard)<<24 | (n.Offset>>32)&0xFFFFFF
	lo = (n.Offset&0xFFFFFFFF)<<32 | uint64(n.Index)<<16 | uint64(n.Epoch)
	return hi, lo
}

// String formats n as the decimal sequence number clients see.
func (n Number) String() string {
	hi, lo := n.words()
	return hashkey.FormatUint128(hi, lo)
}

// AppendText appends the decimal form of n to b.
func (n Number) AppendText(b []byte) ([]byte, error) {
	hi, lo := n.words()
	return hashkey.AppendUint128(b, hi, lo), nil
}

// Parse decodes a sequence number written by String. It rejects anything
// else, including well-formed decimals that no shoal server could have issued.
func Parse(s string) (Number, error) {
	if len(s) != 39 {
		return Number{}, ErrInvalid
	}
	hi, lo, err := hashkey.ParseUint128(s)
	if err != nil {
		return Number{}, ErrInvalid
	}
	if hi>>63 != 1 || (hi>>56)&0x7F != Version {
		return Number{}, ErrInvalid
	}
	return Number{
		Shard:  uint32(hi >> 24),
		Offset: (hi&0xFFFFFF)<<32 | lo>>32,
		Index:  uint16(lo >> 16),
		Epoch:  uint16(lo),
	}, nil
}
