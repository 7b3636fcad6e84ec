package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-json-experiment/json/jsontext"
)

// Timestamp is a point in time with millisecond precision, as Kinesis keeps
// them. In JSON it is a number of epoch seconds with up to three decimals
// (1762440000.123); in AWS CBOR it is tag 1 wrapping integer epoch
// milliseconds (the Java SDK's quirk, which is not RFC 8949's seconds).
type Timestamp int64

// TimestampOf converts t to a Timestamp, truncating to milliseconds.
func TimestampOf(t time.Time) Timestamp { return Timestamp(t.UnixMilli()) }

// Time returns ts as a time.Time.
func (ts Timestamp) Time() time.Time { return time.UnixMilli(int64(ts)) }

// Millis returns ts as epoch milliseconds.
func (ts Timestamp) Millis() int64 { return int64(ts) }

// AppendJSON appends the JSON form of ts to b.
func (ts Timestamp) AppendJSON(b []byte) []byte {
	ms := int64(ts)
	if ms < 0 {
		// Before 1970: the sign applies to the whole number (-0.001 is
		// -1 ms; -1.999 would be -1999 ms).
		b = append(b, '-')
		ms = -ms
	}
	sec, frac := ms/1000, ms%1000
	b = strconv.AppendInt(b, sec, 10)
	if frac != 0 {
		b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	}
	return b
}

// MarshalJSON writes epoch seconds with millisecond decimals.
func (ts Timestamp) MarshalJSON() ([]byte, error) { return ts.AppendJSON(nil), nil }

// MarshalJSONTo writes what MarshalJSON returns, through the encoder's
// scratch buffer: the JSON encoder prefers it to MarshalJSON, which costs an
// allocation per timestamp (one per record of a GetRecords response).
func (ts Timestamp) MarshalJSONTo(enc *jsontext.Encoder) error {
	return enc.WriteValue(ts.AppendJSON(enc.AvailableBuffer()))
}

// UnmarshalJSON accepts epoch seconds as a JSON number (what every AWS SDK
// sends), or a string holding such a number or an RFC 3339 time.
func (ts *Timestamp) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		s, err := strconv.Unquote(string(b))
		if err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return ts.setSeconds(f)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("timestamp %q: %w", s, err)
		}
		*ts = TimestampOf(t)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	return ts.setSeconds(f)
}

func (ts *Timestamp) setSeconds(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e14 {
		return errors.New("timestamp out of range")
	}
	*ts = Timestamp(math.Round(f * 1000))
	return nil
}

// MarshalCBOR writes tag 1 with integer epoch milliseconds, as AWS does.
func (ts Timestamp) MarshalCBOR() ([]byte, error) {
	return cbor.Marshal(cbor.Tag{Number: 1, Content: int64(ts)})
}

// UnmarshalCBOR reads tag 1 (or a bare number) holding epoch milliseconds;
// a floating-point value is taken as milliseconds too.
func (ts *Timestamp) UnmarshalCBOR(b []byte) error {
	content := b
	var tag cbor.RawTag
	if len(b) > 0 && b[0]>>5 == 6 { // major type 6: a tag
		if err := cbor.Unmarshal(b, &tag); err != nil {
			return err
		}
		content = tag.Content
	}
	var v any
	if err := cbor.Unmarshal(content, &v); err != nil {
		return err
	}
	switch n := v.(type) {
	case uint64:
		if n > math.MaxInt64 {
			return errors.New("timestamp out of range")
		}
		*ts = Timestamp(n)
	case int64:
		*ts = Timestamp(n)
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) || math.Abs(n) > 1e17 {
			return errors.New("timestamp out of range")
		}
		*ts = Timestamp(math.Round(n))
	default:
		return fmt.Errorf("timestamp: unexpected CBOR value of type %T", v)
	}
	return nil
}
