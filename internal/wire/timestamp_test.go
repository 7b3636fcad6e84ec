package wire_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/shoalstream/shoal/internal/wire"
)

func TestTimestampOf(t *testing.T) {
	tm := time.Date(2025, 11, 6, 14, 40, 0, 123_999_999, time.UTC)
	ts := wire.TimestampOf(tm)
	if ts.Millis() != ms {
		t.Fatalf("TimestampOf truncated to %d ms, want %d", ts.Millis(), int64(ms))
	}
	if !ts.Time().Equal(tm.Truncate(time.Millisecond)) {
		t.Fatalf("Time() = %v, want %v", ts.Time(), tm.Truncate(time.Millisecond))
	}
}

func TestTimestampJSON(t *testing.T) {
	for _, tc := range []struct {
		ms   wire.Timestamp
		want string
	}{
		{ms, "1762440000.123"},
		{1762440000000, "1762440000"},
		{1762440000001, "1762440000.001"},
		{1762440000010, "1762440000.010"},
		{1762440000100, "1762440000.100"},
		{0, "0"},
		{999, "0.999"},
	} {
		b, err := codecs[0].encode(tc.ms)
		if err != nil || string(b) != tc.want {
			t.Errorf("%d ms: JSON %s, %v; want %s", int64(tc.ms), b, err, tc.want)
		}
		var back wire.Timestamp
		if err := codecs[0].decode(b, &back); err != nil || back != tc.ms {
			t.Errorf("%s: read back %d, %v", b, int64(back), err)
		}
	}

	// What SDKs send: a number of seconds, whole or with decimals (rounded
	// to the millisecond), or a string holding such a number or an RFC 3339
	// time.
	for in, want := range map[string]wire.Timestamp{
		`1762440000.123`:              ms,
		`1762440000.1234`:             ms,
		`1762440000.1236`:             ms + 1,
		`1762440000`:                  1762440000000,
		` 1762440000 `:                1762440000000,
		`1.762440000123e9`:            ms,
		`"1762440000.123"`:            ms,
		`"2025-11-06T14:40:00.123Z"`:  ms,
		`"2025-11-06T15:40:00+01:00"`: 1762440000000,
	} {
		var ts wire.Timestamp
		if err := ts.UnmarshalJSON([]byte(in)); err != nil || ts != want {
			t.Errorf("%s: %d, %v; want %d", in, int64(ts), err, int64(want))
		}
	}
	for _, in := range []string{`"soon"`, `true`, `1e15`, `-1e15`, `"1e300"`, `"NaN"`, `"Inf"`, `"unterminated`} {
		var ts wire.Timestamp
		if err := ts.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("%s: accepted as %d", in, int64(ts))
		}
	}
}

func TestTimestampCBOR(t *testing.T) {
	// Tag 1 (0xc1) holding integer epoch milliseconds, as AWS writes it.
	b, err := codecs[1].encode(wire.Timestamp(ms))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(b), "c11b0000019a599c327b"; got != want {
		t.Fatalf("CBOR %s, want %s", got, want)
	}
	var back wire.Timestamp
	if err := codecs[1].decode(b, &back); err != nil || back != ms {
		t.Fatalf("read back %d, %v", int64(back), err)
	}

	// Accepted: tag 1 or a bare number, integer (either sign) or floating
	// point (rounded); all in milliseconds.
	for _, tc := range []struct {
		name string
		v    any
		want wire.Timestamp
	}{
		{"tag 1, unsigned", cbor.Tag{Number: 1, Content: uint64(ms)}, ms},
		{"tag 1, negative", cbor.Tag{Number: 1, Content: int64(-1500)}, -1500},
		{"tag 1, float", cbor.Tag{Number: 1, Content: 1762440000123.4}, ms},
		{"bare unsigned", uint64(ms), ms},
		{"bare float", 1762440000122.6, ms},
	} {
		b, err := cbor.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		var ts wire.Timestamp
		if err := codecs[1].decode(b, &ts); err != nil || ts != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.name, int64(ts), err, int64(tc.want))
		}
	}
	for _, tc := range []struct {
		name string
		v    any
	}{
		{"string", "1762440000123"},
		{"tag 1, string", cbor.Tag{Number: 1, Content: "x"}},
		{"beyond int64", uint64(1 << 63)},
		{"float out of range", 1e18},
	} {
		b, err := cbor.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		var ts wire.Timestamp
		if err := codecs[1].decode(b, &ts); err == nil {
			t.Errorf("%s: accepted as %d", tc.name, int64(ts))
		}
	}
}

// Times before 1970 keep their sign on the whole number and read back.
func TestTimestampJSONNegative(t *testing.T) {
	for ms, want := range map[int64]string{-1: "-0.001", -1500: "-1.500", -1000: "-1", -2001: "-2.001", 1500: "1.500"} {
		got := string(wire.Timestamp(ms).AppendJSON(nil))
		if got != want {
			t.Errorf("AppendJSON(%d) = %s, want %s", ms, got, want)
		}
		var back wire.Timestamp
		if err := back.UnmarshalJSON([]byte(got)); err != nil || int64(back) != ms {
			t.Errorf("%s read back as %d, %v; want %d", got, int64(back), err, ms)
		}
	}
}
