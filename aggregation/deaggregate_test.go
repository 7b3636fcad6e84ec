package aggregation

import (
	"bytes"
	"crypto/md5"
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// checkPlain fails unless subs is the one plain record (pk, data), with data
// not copied.
func checkPlain(t *testing.T, subs []SubRecord, pk string, data []byte) {
	t.Helper()
	if len(subs) != 1 {
		t.Fatalf("got %d records, want 1", len(subs))
	}
	s := subs[0]
	if s.Aggregated || s.SubSequenceNumber != 0 || s.PartitionKey != pk || s.ExplicitHashKey != "" || !bytes.Equal(s.Data, data) {
		t.Fatalf("got %+v, want plain record %q", s, pk)
	}
	if len(data) > 0 && &s.Data[0] != &data[0] {
		t.Fatal("plain record's data was copied")
	}
	if (s.Data == nil) != (data == nil) {
		t.Fatalf("data nil-ness changed: %v", s.Data == nil)
	}
}

func TestDeaggregateNotAggregated(t *testing.T) {
	emptyPB := md5.Sum(nil)
	tests := map[string][]byte{
		"nil":              nil,
		"empty":            {},
		"text":             []byte("hello, world"),
		"magic only":       Magic[:],
		"magic and md5":    append(Magic[:len(Magic):len(Magic)], emptyPB[:]...), // 20 bytes: the KCL needs more
		"almost magic":     append([]byte{0xF3, 0x89, 0x9A, 0xC3}, bytes.Repeat([]byte{0}, 40)...),
		"magic at the end": append(bytes.Repeat([]byte{0}, 40), Magic[:]...),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			subs, err := Deaggregate("outer", data)
			if !errors.Is(err, ErrNotAggregated) || errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrNotAggregated", err)
			}
			checkPlain(t, subs, "outer", data)
			if IsAggregated(data) {
				t.Fatal("IsAggregated = true")
			}
		})
	}
}

func TestDeaggregateCorrupt(t *testing.T) {
	rec := func(fields pb) pb { return pb{}.str(1, "k").msg(3, fields) }
	valid := rec(pb{}.varint(1, 0).str(3, "data"))
	badMD5 := wrap(valid)
	badMD5[len(badMD5)-1] ^= 1
	tests := map[string][]byte{
		"bad md5":                badMD5,
		"md5 of other bytes":     append(append(Magic[:4:4], valid...), make([]byte, 16)...),
		"truncated message":      wrap(valid[:len(valid)-2]),
		"truncated varint":       wrap(pb{0x0a, 0x80}),
		"overlong varint":        wrap(pb{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}),
		"field number zero":      wrap(pb{0x02, 0x00}),
		"unterminated group":     wrap(append(valid, 0x2b)), // start group, field 5
		"no records":             wrap(pb{}.str(1, "k").str(2, "1")),
		"only unknown fields":    wrap(pb{}.varint(9, 1)),
		"pk index out of range":  wrap(rec(pb{}.varint(1, 1).str(3, "d"))),
		"pk index huge":          wrap(rec(pb{}.varint(1, 1<<63).str(3, "d"))),
		"no pk table":            wrap(pb{}.msg(3, pb{}.varint(1, 0).str(3, "d"))),
		"ehk index out of range": wrap(pb{}.str(1, "k").str(2, "5").msg(3, pb{}.varint(1, 0).varint(2, 1).str(3, "d"))),
		"ehk without table":      wrap(rec(pb{}.varint(1, 0).varint(2, 0).str(3, "d"))),
		"missing pk index":       wrap(rec(pb{}.str(3, "d"))),
		"missing data":           wrap(rec(pb{}.varint(1, 0))),
		"pk index wrong type":    wrap(rec(pb{}.str(1, "0").str(3, "d"))),
		"bad record bytes":       wrap(rec(pb{0x08})),
		"tag without key":        wrap(rec(pb{}.varint(1, 0).str(3, "d").msg(4, pb{}.str(2, "v")))),
		"bad tag bytes":          wrap(rec(pb{}.varint(1, 0).str(3, "d").msg(4, pb{0x0a, 0x05}))),
		"second record bad":      wrap(pb{}.str(1, "k").msg(3, pb{}.varint(1, 0).str(3, "ok")).msg(3, pb{}.varint(1, 3).str(3, "bad"))),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			subs, err := Deaggregate("outer", data)
			if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotAggregated) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			checkPlain(t, subs, "outer", data)

			// The appending form keeps what dst held and adds only the plain record.
			prefix := []SubRecord{{PartitionKey: "earlier"}}
			out, err := AppendDeaggregate(append(make([]SubRecord, 0, 8), prefix...), "outer", data)
			if !errors.Is(err, ErrCorrupt) || len(out) != 2 || out[0].PartitionKey != "earlier" {
				t.Fatalf("AppendDeaggregate: %v, %+v", err, out)
			}
			checkPlain(t, out[1:], "outer", data)
		})
	}
}

// TestDeaggregateUnusualEncodings checks valid messages that the KPL does
// not write but any protobuf parser accepts.
func TestDeaggregateUnusualEncodings(t *testing.T) {
	tests := []struct {
		name string
		msg  pb
		want []UserRecord
	}{
		{
			"records before tables, tables interleaved",
			pb{}.msg(3, pb{}.varint(1, 1).varint(2, 0).str(3, "x")).str(1, "k0").str(2, "7").msg(3, pb{}.str(3, "y").varint(1, 0)).str(1, "k1"),
			[]UserRecord{{PartitionKey: "k1", ExplicitHashKey: "7", Data: []byte("x")}, {PartitionKey: "k0", Data: []byte("y")}},
		},
		{
			"unknown fields of every wire type",
			pb{}.varint(15, 9).str(1, "k").str(99, "skip").
				msg(3, pb{}.varint(1, 0).str(3, "d").varint(7, 1).msg(4, pb{}.str(1, "tagkey").str(2, "v").varint(3, 1))).
				msg(3, pb{}.varint(1, 0).str(3, "e").msg(4, pb{}.str(1, "only key"))),
			[]UserRecord{{PartitionKey: "k", Data: []byte("d")}, {PartitionKey: "k", Data: []byte("e")}},
		},
		{
			"fixed and group fields skipped",
			append(append(pb{}.str(1, "k"), protowire.AppendFixed32(protowire.AppendTag(nil, 6, protowire.Fixed32Type), 1)...),
				pb{}.msg(3, append(pb{}.varint(1, 0).str(3, "d"), protowire.AppendFixed64(protowire.AppendTag(nil, 8, protowire.Fixed64Type), 2)...))...).
				msg(3, append(append(pb{}.varint(1, 0), 0x2b, 0x08, 0x01, 0x2c), pb{}.str(3, "g")...)),
			[]UserRecord{{PartitionKey: "k", Data: []byte("d")}, {PartitionKey: "k", Data: []byte("g")}},
		},
		{
			"repeated scalar: last wins",
			pb{}.str(1, "a").str(1, "b").msg(3, pb{}.varint(1, 0).str(3, "first").varint(1, 1).str(3, "last")),
			[]UserRecord{{PartitionKey: "b", Data: []byte("last")}},
		},
		{
			"records with wrong wire type are unknown fields",
			pb{}.str(1, "a").varint(3, 5).msg(3, pb{}.varint(1, 0).str(3, "d")),
			[]UserRecord{{PartitionKey: "a", Data: []byte("d")}},
		},
		{
			"empty keys in tables",
			pb{}.str(1, "").str(2, "").msg(3, pb{}.varint(1, 0).varint(2, 0).str(3, "")),
			[]UserRecord{{PartitionKey: "", Data: []byte{}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subs, err := Deaggregate("outer", wrap(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			checkSame(t, tt.want, subs)
			for i, s := range subs {
				if !s.Aggregated || s.SubSequenceNumber != int64(i) {
					t.Fatalf("record %d: %+v", i, s)
				}
			}
		})
	}
}

func TestDeaggregateDataAliasing(t *testing.T) {
	data := wrap(pb{}.str(1, "k").msg(3, pb{}.varint(1, 0).str(3, "one")).msg(3, pb{}.varint(1, 0).str(3, "two")))
	subs, err := Deaggregate("outer", data)
	if err != nil {
		t.Fatal(err)
	}
	if cap(subs[0].Data) != len(subs[0].Data) {
		t.Fatalf("cap %d > len %d: appending would overwrite the next record", cap(subs[0].Data), len(subs[0].Data))
	}
	_ = append(subs[0].Data, 'X')
	if string(subs[1].Data) != "two" {
		t.Fatal("append to one record's data changed another")
	}
}

func TestAppendDeaggregateReuse(t *testing.T) {
	agg := aggregateAll(t, Config{}, goldenRecords)[0]
	buf := make([]SubRecord, 0, 16)
	for range 3 {
		var err error
		buf, err = AppendDeaggregate(buf[:0], agg.PartitionKey, agg.Data)
		if err != nil {
			t.Fatal(err)
		}
		checkSame(t, goldenRecords, buf)
	}
	allocs := testing.AllocsPerRun(100, func() {
		buf, _ = AppendDeaggregate(buf[:0], agg.PartitionKey, agg.Data)
	})
	if allocs > 1 { // the one string holding every key
		t.Errorf("%v allocations per aggregate", allocs)
	}
	plain := []byte("plain")
	allocs = testing.AllocsPerRun(100, func() {
		buf, _ = AppendDeaggregate(buf[:0], "pk", plain)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per plain record", allocs)
	}
}
