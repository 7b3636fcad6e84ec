package tail_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/internal/tail"
	"github.com/shoalstream/shoal/internal/testutil/fakeclock"
	"github.com/shoalstream/shoal/server"
)

var known = tail.Record{
	ShardID:        "shardId-000000000001",
	SequenceNumber: "49661234567890123456789012345678901234567",
	ArrivalTime:    time.Date(2025, 3, 4, 6, 6, 7, 89e6, time.FixedZone("CET", 3600)),
	PartitionKey:   `user "42"`,
	Data:           []byte("{\"n\":1}\tok\\ é\n\x00\x7f\xff\u00a0\U0001F600<&>"),
}

func TestFormats(t *testing.T) {
	agg := known
	agg.Aggregated, agg.SubSequenceNumber, agg.ExplicitHashKey = true, 3, "12345"
	empty := known
	empty.Data = nil
	for _, tc := range []struct {
		name   string
		f      tail.Format
		r      tail.Record
		output string
	}{
		{"text", tail.Text, known,
			`shardId-000000000001 49661234567890123456789012345678901234567 2025-03-04T05:06:07.089Z "user \"42\"" {"n":1}\tok\\ é\n\x00\x7f\xff\u00a0` + "\U0001F600<&>\n"},
		{"text aggregated", tail.Text, agg,
			`shardId-000000000001 49661234567890123456789012345678901234567:3 2025-03-04T05:06:07.089Z "user \"42\"" {"n":1}\tok\\ é\n\x00\x7f\xff\u00a0` + "\U0001F600<&>\n"},
		{"text empty", tail.Text, empty,
			`shardId-000000000001 49661234567890123456789012345678901234567 2025-03-04T05:06:07.089Z "user \"42\"" ` + "\n"},
		{"json", tail.JSON, known,
			`{"shardId":"shardId-000000000001","sequenceNumber":"49661234567890123456789012345678901234567","approximateArrivalTimestamp":"2025-03-04T05:06:07.089Z","partitionKey":"user \"42\"","data":"eyJuIjoxfQlva1wgw6kKAH//wqDwn5iAPCY+"}` + "\n"},
		{"json aggregated", tail.JSON, agg,
			`{"shardId":"shardId-000000000001","sequenceNumber":"49661234567890123456789012345678901234567","subSequenceNumber":3,"approximateArrivalTimestamp":"2025-03-04T05:06:07.089Z","partitionKey":"user \"42\"","explicitHashKey":"12345","data":"eyJuIjoxfQlva1wgw6kKAH//wqDwn5iAPCY+"}` + "\n"},
		{"json empty", tail.JSON, empty,
			`{"shardId":"shardId-000000000001","sequenceNumber":"49661234567890123456789012345678901234567","approximateArrivalTimestamp":"2025-03-04T05:06:07.089Z","partitionKey":"user \"42\"","data":""}` + "\n"},
		{"hex", tail.Hex, known,
			`shardId-000000000001 49661234567890123456789012345678901234567 2025-03-04T05:06:07.089Z "user \"42\"" 27 bytes` + "\n" +
				"00000000  7b 22 6e 22 3a 31 7d 09  6f 6b 5c 20 c3 a9 0a 00  |{\"n\":1}.ok\\ ....|\n" +
				"00000010  7f ff c2 a0 f0 9f 98 80  3c 26 3e                 |........<&>|\n"},
		{"hex empty", tail.Hex, empty,
			`shardId-000000000001 49661234567890123456789012345678901234567 2025-03-04T05:06:07.089Z "user \"42\"" 0 bytes` + "\n"},
	} {
		if got := string(tc.f.Append(nil, tc.r)); got != tc.output {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.output)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range []tail.Format{tail.Text, tail.JSON, tail.Hex} {
		if got, err := tail.ParseFormat(strings.ToUpper(f.String())); err != nil || got != f {
			t.Errorf("ParseFormat(%q) = %v, %v", f, got, err)
		}
	}
	if _, err := tail.ParseFormat("yaml"); err == nil {
		t.Error("ParseFormat(yaml) succeeded")
	}
}

// TestFormatsFromServer prints a record put on a server whose clock is
// known, in each format.
func TestFormatsFromServer(t *testing.T) {
	clk := fakeclock.New(time.Date(2025, 3, 4, 5, 6, 7, 89e6, time.UTC))
	e := newEnv(t, server.Config{Now: clk.Now})
	e.createStream("s", 1)
	p, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k 1"), Data: []byte("hi\tthere")})
	if err != nil {
		t.Fatal(err)
	}
	for f, want := range map[tail.Format]string{
		tail.Text: fmt.Sprintf("shardId-000000000000 %s 2025-03-04T05:06:07.089Z \"k 1\" hi\\tthere\n", *p.SequenceNumber),
		tail.JSON: fmt.Sprintf(`{"shardId":"shardId-000000000000","sequenceNumber":"%s","approximateArrivalTimestamp":"2025-03-04T05:06:07.089Z","partitionKey":"k 1","data":"aGkJdGhlcmU="}`+"\n", *p.SequenceNumber),
		tail.Hex: fmt.Sprintf("shardId-000000000000 %s 2025-03-04T05:06:07.089Z \"k 1\" 8 bytes\n"+
			"00000000  68 69 09 74 68 65 72 65                           |hi.there|\n", *p.SequenceNumber),
	} {
		t.Run(f.String(), func(t *testing.T) {
			out := newSink()
			r := start(t, tail.Config{Client: e.c, Stream: "s", From: tail.From{Kind: tail.TrimHorizon}, Format: f, Out: out})
			out.wait(t, "the record", func([]string) bool { return len(out.String()) >= len(want) })
			if err := r.stop(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got := out.String(); got != want {
				t.Errorf("got %q\nwant %q", got, want)
			}
		})
	}
}

// TestDeaggregate prints the user records of KPL aggregates.
func TestDeaggregate(t *testing.T) {
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	agg, err := aggregation.NewAggregator(aggregation.Config{OuterKey: aggregation.OuterKeyKPL})
	if err != nil {
		t.Fatal(err)
	}
	users := []aggregation.UserRecord{
		{PartitionKey: "a", Data: []byte("one")},
		{PartitionKey: "b", ExplicitHashKey: "42", Data: []byte("two")},
		{PartitionKey: "a", Data: []byte("three")},
	}
	for _, u := range users {
		if err := agg.Add(u); err != nil {
			t.Fatal(err)
		}
	}
	rec, err := agg.Build()
	if err != nil {
		t.Fatal(err)
	}
	putRaw := func(pk string, data []byte) string {
		t.Helper()
		out, err := e.c.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(pk), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return *out.SequenceNumber
	}
	aggSeq := putRaw(rec.PartitionKey, rec.Data)
	plainSeq := putRaw("p", []byte("plain"))
	corrupt := append(append(aggregation.Magic[:], rec.Data[4:len(rec.Data)-1]...), 0) // bad MD5
	corruptSeq := putRaw("c", corrupt)

	t.Run("json", func(t *testing.T) {
		out, log := newSink(), newSink()
		r := start(t, tail.Config{Client: e.c, Stream: "s", From: tail.From{Kind: tail.TrimHorizon}, Deaggregate: true, Format: tail.JSON, Out: out, Log: log})
		lines := parseJSON(t, out.wait(t, "5 records", func(ls []string) bool { return len(ls) >= 5 }))
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		type row struct {
			seq, pk, data, ehk string
			sub                int64
		}
		var got []row
		for _, l := range lines {
			rw := row{seq: l.SequenceNumber, pk: l.PartitionKey, data: string(l.Data), sub: -1}
			if l.SubSequenceNumber != nil {
				rw.sub = *l.SubSequenceNumber
			}
			if l.ExplicitHashKey != nil {
				rw.ehk = *l.ExplicitHashKey
			}
			got = append(got, rw)
		}
		want := []row{
			{aggSeq, "a", "one", "", 0},
			{aggSeq, "b", "two", "42", 1},
			{aggSeq, "a", "three", "", 2},
			{plainSeq, "p", "plain", "", -1},
			{corruptSeq, "c", string(corrupt), "", -1},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got  %v\nwant %v", got, want)
		}
		if !strings.Contains(log.String(), "md5 mismatch") {
			t.Errorf("log: %q", log.String())
		}
	})
	t.Run("text", func(t *testing.T) {
		out := newSink()
		r := start(t, tail.Config{Client: e.c, Stream: "s", From: tail.From{Kind: tail.TrimHorizon}, Deaggregate: true, Out: out})
		lines := out.wait(t, "5 records", func(ls []string) bool { return len(ls) >= 5 })
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		for i, want := range []string{aggSeq + ":0", aggSeq + ":1", aggSeq + ":2", plainSeq + " ", corruptSeq + " "} {
			if !strings.Contains(lines[i], " "+want) {
				t.Errorf("line %d %q lacks %q", i, lines[i], want)
			}
		}
	})
	t.Run("off", func(t *testing.T) {
		out := newSink()
		r := start(t, tail.Config{Client: e.c, Stream: "s", From: tail.From{Kind: tail.TrimHorizon}, Format: tail.JSON, Out: out})
		lines := parseJSON(t, out.wait(t, "3 records", func(ls []string) bool { return len(ls) >= 3 }))
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		if len(lines) != 3 || string(lines[0].Data) != string(rec.Data) || lines[0].PartitionKey != aggregation.KPLPartitionKey || lines[0].SubSequenceNumber != nil {
			t.Errorf("without Deaggregate: %+v", lines)
		}
	})
}
