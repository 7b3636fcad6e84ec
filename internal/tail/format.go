package tail

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Format is how Run prints a record.
type Format int

const (
	// Text prints one line per record: shard id, sequence number (with
	// ":<sub-sequence number>" for a user record of an aggregate), arrival
	// time, partition key quoted as a Go string, and the data as text with
	// non-printable characters escaped (see Record.AppendText).
	Text Format = iota
	// JSON prints one JSON object per line (see Record.AppendJSON).
	JSON
	// Hex prints the Text line without its data, followed by a hex dump of
	// the data (see Record.AppendHex).
	Hex
)

// ParseFormat parses "text", "json" or "hex".
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(s) {
	case "text":
		return Text, nil
	case "json":
		return JSON, nil
	case "hex":
		return Hex, nil
	}
	return 0, fmt.Errorf("tail: unknown format %q (want text, json or hex)", s)
}

// String returns "text", "json" or "hex".
func (f Format) String() string {
	switch f {
	case Text:
		return "text"
	case JSON:
		return "json"
	case Hex:
		return "hex"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Append appends r in format f to b.
func (f Format) Append(b []byte, r Record) []byte {
	switch f {
	case JSON:
		return r.AppendJSON(b)
	case Hex:
		return r.AppendHex(b)
	}
	return r.AppendText(b)
}

// Record is one record as Run prints it: a Kinesis record, or with
// Config.Deaggregate one user record of a KPL aggregate.
type Record struct {
	ShardID        string
	SequenceNumber string
	// SubSequenceNumber is the user record's index in its aggregate; only
	// meaningful when Aggregated is set.
	SubSequenceNumber int64
	// Aggregated reports that the record is a user record taken out of a
	// KPL aggregate (Config.Deaggregate).
	Aggregated bool
	// ArrivalTime is the record's ApproximateArrivalTimestamp.
	ArrivalTime  time.Time
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key from its
	// aggregate, if it has one. Kinesis does not return the explicit hash
	// key of a plain record, so it is "" for those.
	ExplicitHashKey string
	Data            []byte
}

// timeLayout is RFC 3339 with milliseconds, the precision of Kinesis
// arrival timestamps; times are printed in UTC.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// appendHeader appends the fields every format but JSON starts with:
// shard, sequence number[:sub], arrival time, quoted partition key.
func (r Record) appendHeader(b []byte) []byte {
	b = append(b, r.ShardID...)
	b = append(b, ' ')
	b = append(b, r.SequenceNumber...)
	if r.Aggregated {
		b = append(b, ':')
		b = strconv.AppendInt(b, r.SubSequenceNumber, 10)
	}
	b = append(b, ' ')
	b = r.ArrivalTime.UTC().AppendFormat(b, timeLayout)
	b = append(b, ' ')
	return strconv.AppendQuote(b, r.PartitionKey)
}

// AppendText appends r's Text line to b:
//
//	shardId-000000000001 49...7 2025-03-04T05:06:07.089Z "user-42" {"n":1}\tend\n
//
// The data is printed as it is where it is printable UTF-8 (spaces and
// quotes included); a backslash becomes \\, newline, carriage return and
// tab become \n, \r and \t, other non-printable characters \xNN, \uNNNN or
// \UNNNNNNNN, and each byte that is not valid UTF-8 \xNN. So one record is
// always one line.
func (r Record) AppendText(b []byte) []byte {
	b = r.appendHeader(b)
	b = append(b, ' ')
	b = appendEscaped(b, r.Data)
	return append(b, '\n')
}

// AppendHex appends r's Text line without the data, followed by the data's
// length and a hex dump of it (encoding/hex.Dump: offset, 16 bytes in hex,
// the printable ASCII among them):
//
//	shardId-000000000001 49...7 2025-03-04T05:06:07.089Z "user-42" 5 bytes
//	00000000  68 65 6c 6c 6f                                    |hello|
func (r Record) AppendHex(b []byte) []byte {
	b = r.appendHeader(b)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(r.Data)), 10)
	b = append(b, " bytes\n"...)
	return append(b, hex.Dump(r.Data)...)
}

// jsonRecord is the JSON form of a Record, with the member names of the
// Kinesis API (and the KCL's subSequenceNumber and explicitHashKey).
type jsonRecord struct {
	ShardID                     string `json:"shardId"`
	SequenceNumber              string `json:"sequenceNumber"`
	SubSequenceNumber           *int64 `json:"subSequenceNumber,omitempty"`
	ApproximateArrivalTimestamp string `json:"approximateArrivalTimestamp"`
	PartitionKey                string `json:"partitionKey"`
	ExplicitHashKey             string `json:"explicitHashKey,omitempty"`
	Data                        []byte `json:"data"`
}

// AppendJSON appends r as one JSON object and a newline to b:
//
//	{"shardId":"shardId-000000000001","sequenceNumber":"49...7","approximateArrivalTimestamp":"2025-03-04T05:06:07.089Z","partitionKey":"user-42","data":"aGVsbG8="}
//
// data is base64 (standard, padded); the arrival time is RFC 3339 with
// milliseconds, in UTC. subSequenceNumber is present only for a user
// record of an aggregate, explicitHashKey only when that user record has
// one.
func (r Record) AppendJSON(b []byte) []byte {
	j := jsonRecord{
		ShardID:                     r.ShardID,
		SequenceNumber:              r.SequenceNumber,
		ApproximateArrivalTimestamp: r.ArrivalTime.UTC().Format(timeLayout),
		PartitionKey:                r.PartitionKey,
		ExplicitHashKey:             r.ExplicitHashKey,
		Data:                        r.Data,
	}
	if j.Data == nil {
		j.Data = []byte{} // "" rather than null
	}
	if r.Aggregated {
		sub := r.SubSequenceNumber
		j.SubSequenceNumber = &sub
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)              // partition keys and the like as they are: <, > and & need no escape outside HTML
	if err := enc.Encode(j); err != nil { // not seen: every field is a string, a number or bytes
		panic(fmt.Sprintf("tail: encode a record: %v", err))
	}
	return append(b, buf.Bytes()...) // Encode ends it with a newline
}

// appendEscaped appends data as text, escaped as AppendText describes.
func appendEscaped(b, data []byte) []byte {
	const digits = "0123456789abcdef"
	for len(data) > 0 {
		c, n := utf8.DecodeRune(data)
		switch {
		case c == utf8.RuneError && n == 1:
			b = append(b, '\\', 'x', digits[data[0]>>4], digits[data[0]&0xF])
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case strconv.IsPrint(c):
			b = append(b, data[:n]...)
		case c < utf8.RuneSelf:
			b = append(b, '\\', 'x', digits[c>>4], digits[c&0xF])
		case c <= 0xFFFF:
			b = append(b, '\\', 'u')
			b = appendHexDigits(b, uint32(c), 4)
		default:
			b = append(b, '\\', 'U')
			b = appendHexDigits(b, uint32(c), 8)
		}
		data = data[n:]
	}
	return b
}

// appendHexDigits appends the n low hex digits of v.
func appendHexDigits(b []byte, v uint32, n int) []byte {
	const digits = "0123456789abcdef"
	for i := n - 1; i >= 0; i-- {
		b = append(b, digits[(v>>(4*uint(i)))&0xF])
	}
	return b
}
