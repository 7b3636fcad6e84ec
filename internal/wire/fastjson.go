package wire

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
)

// This file holds hand-written JSON 1.1 codecs for the hot operations:
// the PutRecords request and the PutRecords response. They handle the
// shapes every AWS SDK writes and leave anything else to the general
// decoder (github.com/go-json-experiment/json): each reports whether it
// handled its input, and when it did, its result is exactly the general
// codec's (the differential tests and fuzz targets of this package and of
// the server hold them to it). A PutRecords request decodes into four
// allocations, whatever its record count: the records, the partition key
// pointers, one string holding every key and one buffer holding every
// record's data (each Data is capped to its own bytes, so that appending to
// one record's Data never overwrites the next).

// putSpan locates one record's members in the request body: start and end
// offsets of the raw string contents, -1 when absent, -2 when null.
type putSpan struct {
	data, pk, ehk [2]int32
}

var spanPool = sync.Pool{New: func() any { s := make([]putSpan, 0, 512); return &s }}

// DecodePutRecordsJSON decodes a PutRecords request body into in, which
// must be the zero value. It reports false, leaving in zero, when the body
// is not of the plain shape it handles: a single object with the members
// StreamName, StreamARN, StreamId (strings), Records (a non-empty array of
// objects with Data, PartitionKey and ExplicitHashKey, all strings) and
// DryRun (true or false), each at most once, whose strings are printable
// ASCII without escapes and whose Data are non-empty, padded standard
// base64. Anything else, valid or not, is for the general decoder.
func DecodePutRecordsJSON(body []byte, in *PutRecordsInput) bool {
	if len(body) > 1<<30 {
		return false
	}
	sp := spanPool.Get().(*[]putSpan)
	spans := (*sp)[:0]
	d := fastDec{b: body}
	var (
		name, arn, id [2]int32
		dry           int8 // 0 absent, 1 false, 2 true, 3 null
		seenRecords   bool
		dataLen       int
		keyLen        int
		nKeys         int
	)
	name[0], arn[0], id[0] = -1, -1, -1
	ok := func() bool {
		if !d.byte('{') {
			return false
		}
		for first := true; ; first = false {
			d.ws()
			if d.peek() == '}' && first {
				return false // empty object: no Records, let the validator's path run
			}
			k0, k1, ok := d.str()
			if !ok || !d.byte(':') {
				return false
			}
			switch string(body[k0:k1]) {
			case "StreamName":
				if name[0] != -1 || !d.strOrNull(&name) {
					return false
				}
			case "StreamARN":
				if arn[0] != -1 || !d.strOrNull(&arn) {
					return false
				}
			case "StreamId":
				if id[0] != -1 || !d.strOrNull(&id) {
					return false
				}
			case "DryRun":
				if dry != 0 {
					return false
				}
				d.ws()
				switch {
				case d.lit("true"):
					dry = 2
				case d.lit("false"):
					dry = 1
				case d.lit("null"):
					dry = 3
				default:
					return false
				}
			case "Records":
				if seenRecords || !d.byte('[') {
					return false
				}
				seenRecords = true
				for {
					s, ok := d.entry()
					if !ok {
						return false
					}
					spans = append(spans, s)
					dataLen += int(s.data[1]-s.data[0]) / 4 * 3
					if s.pk[0] >= 0 {
						keyLen += int(s.pk[1] - s.pk[0])
						nKeys++
					}
					if s.ehk[0] >= 0 {
						keyLen += int(s.ehk[1] - s.ehk[0])
						nKeys++
					}
					d.ws()
					if d.peek() == ']' {
						d.i++
						break
					}
					if !d.byte(',') {
						return false
					}
				}
			default:
				return false
			}
			d.ws()
			if d.peek() == '}' {
				d.i++
				break
			}
			if !d.byte(',') {
				return false
			}
		}
		d.ws()
		return d.i == len(body) && seenRecords
	}()
	if ok {
		ok = fill(body, in, spans, dataLen, keyLen, nKeys)
	}
	if ok {
		if name[0] >= 0 {
			in.StreamName = ptr(string(body[name[0]:name[1]]))
		}
		if arn[0] >= 0 {
			in.StreamARN = ptr(string(body[arn[0]:arn[1]]))
		}
		if id[0] >= 0 {
			in.StreamID = ptr(string(body[id[0]:id[1]]))
		}
		if dry == 1 || dry == 2 {
			in.DryRun = ptr(dry == 2)
		}
	}
	if cap(spans) <= 1<<16 {
		*sp = spans[:0]
		spanPool.Put(sp)
	}
	return ok
}

func ptr[T any](v T) *T { return &v }

// fill decodes the records that spans locate into in.Records.
func fill(body []byte, in *PutRecordsInput, spans []putSpan, dataLen, keyLen, nKeys int) bool {
	recs := make([]PutRecordsRequestEntry, len(spans))
	data := make([]byte, dataLen)
	var keys strings.Builder
	keys.Grow(keyLen)
	for _, s := range spans {
		if s.pk[0] >= 0 {
			keys.Write(body[s.pk[0]:s.pk[1]])
		}
		if s.ehk[0] >= 0 {
			keys.Write(body[s.ehk[0]:s.ehk[1]])
		}
	}
	all := keys.String()
	ptrs := make([]string, 0, nKeys)
	off, koff := 0, 0
	key := func(sp [2]int32) *string {
		n := int(sp[1] - sp[0])
		ptrs = append(ptrs, all[koff:koff+n])
		koff += n
		return &ptrs[len(ptrs)-1]
	}
	for i, s := range spans {
		src := body[s.data[0]:s.data[1]]
		n, err := base64.StdEncoding.Decode(data[off:], src)
		if err != nil || base64.StdEncoding.EncodedLen(n) != len(src) {
			return false
		}
		r := &recs[i]
		r.Data = data[off : off+n : off+n]
		off += n
		if s.pk[0] >= 0 {
			r.PartitionKey = key(s.pk)
		}
		if s.ehk[0] >= 0 {
			r.ExplicitHashKey = key(s.ehk)
		}
	}
	in.Records = recs
	return true
}

// fastDec scans a JSON body for DecodePutRecordsJSON.
type fastDec struct {
	b []byte
	i int
}

func (d *fastDec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *fastDec) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// byte skips white space and then c.
func (d *fastDec) byte(c byte) bool {
	d.ws()
	if d.peek() != c {
		return false
	}
	d.i++
	return true
}

func (d *fastDec) lit(s string) bool {
	if len(d.b)-d.i < len(s) || string(d.b[d.i:d.i+len(s)]) != s {
		return false
	}
	d.i += len(s)
	return true
}

// str skips white space and reads a string of printable ASCII without
// escapes, returning the offsets of its contents.
func (d *fastDec) str() (start, end int32, ok bool) {
	if !d.byte('"') {
		return 0, 0, false
	}
	s := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			d.i++
			return int32(s), int32(d.i - 1), true
		}
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return 0, 0, false
		}
		d.i++
	}
	return 0, 0, false
}

// strOrNull reads a string as str does, or null, which it records as the
// span {-2, -2}.
func (d *fastDec) strOrNull(dst *[2]int32) bool {
	d.ws()
	if d.lit("null") {
		dst[0], dst[1] = -2, -2
		return true
	}
	var ok bool
	dst[0], dst[1], ok = d.str()
	return ok
}

// b64 reads a non-empty string whose length is a multiple of 4, for fill to
// decode as padded standard base64 (which also rejects any byte outside the
// alphabet: a backslash, a control character, a line break).
func (d *fastDec) b64() (start, end int32, ok bool) {
	if !d.byte('"') {
		return 0, 0, false
	}
	n := bytes.IndexByte(d.b[d.i:], '"')
	if n <= 0 || n%4 != 0 {
		return 0, 0, false
	}
	s := d.i
	d.i += n + 1
	return int32(s), int32(s + n), true
}

// entry reads one object of the Records array.
func (d *fastDec) entry() (s putSpan, ok bool) {
	s.data[0], s.pk[0], s.ehk[0] = -1, -1, -1
	if !d.byte('{') {
		return s, false
	}
	for first := true; ; first = false {
		d.ws()
		if first && d.peek() == '}' {
			return s, false
		}
		k0, k1, ok := d.str()
		if !ok || !d.byte(':') {
			return s, false
		}
		var dst *[2]int32
		switch string(d.b[k0:k1]) {
		case "Data":
			if s.data[0] >= 0 {
				return s, false
			}
			if s.data[0], s.data[1], ok = d.b64(); !ok {
				return s, false
			}
		case "PartitionKey":
			dst = &s.pk
		case "ExplicitHashKey":
			dst = &s.ehk
		default:
			return s, false
		}
		if dst != nil && (dst[0] != -1 || !d.strOrNull(dst)) {
			return s, false
		}
		d.ws()
		if d.peek() == '}' {
			d.i++
			return s, s.data[0] >= 0
		}
		if !d.byte(',') {
			return s, false
		}
	}
}

// AppendPutRecordsOutputJSON appends the JSON form of out to b, as the
// general encoder writes it, and reports true; or reports false, with b
// unchanged in content, when a string of out is not printable ASCII
// without '"' and '\\' (for the general encoder to escape).
func AppendPutRecordsOutputJSON(b []byte, out *PutRecordsOutput) ([]byte, bool) {
	n := len(b)
	if !plain(out.EncryptionType) {
		return b, false
	}
	b = append(b, `{"FailedRecordCount":`...)
	b = strconv.AppendInt(b, int64(out.FailedRecordCount), 10)
	b = append(b, `,"Records":[`...)
	for i := range out.Records {
		r := &out.Records[i]
		if !plain(r.SequenceNumber) || !plain(r.ShardID) || !plain(r.ErrorCode) || !plain(r.ErrorMessage) {
			return b[:n], false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		sep := false
		b, sep = member(b, sep, `"SequenceNumber":"`, r.SequenceNumber)
		b, sep = member(b, sep, `"ShardId":"`, r.ShardID)
		b, sep = member(b, sep, `"ErrorCode":"`, r.ErrorCode)
		b, _ = member(b, sep, `"ErrorMessage":"`, r.ErrorMessage)
		b = append(b, '}')
	}
	b = append(b, ']')
	if out.EncryptionType != "" {
		b = append(b, `,"EncryptionType":"`...)
		b = append(b, out.EncryptionType...)
		b = append(b, '"')
	}
	return append(b, '}'), true
}

// member appends an omitempty string member.
func member(b []byte, sep bool, name, v string) ([]byte, bool) {
	if v == "" {
		return b, sep
	}
	if sep {
		b = append(b, ',')
	}
	b = append(b, name...)
	b = append(b, v...)
	return append(b, '"'), true
}

// plain reports whether s needs no escaping in JSON: printable ASCII other
// than '"' and '\\'.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
