package server_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/shoalstream/shoal/server"
)

// faultMetrics records Metrics.Fault calls.
type faultMetrics struct {
	server.NopMetrics
	mu sync.Mutex
	n  map[string]int // by "op/kind"
}

func (m *faultMetrics) Fault(op, kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[string]int{}
	}
	m.n[op+"/"+kind]++
}

func (m *faultMetrics) get(op, kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[op+"/"+kind]
}

func seed(v uint64) *uint64 { return &v }

func mustParseFaults(t testing.TB, js string) server.FaultConfig {
	t.Helper()
	fc, err := server.ParseFaults([]byte(js))
	if err != nil {
		t.Fatalf("ParseFaults(%s): %v", js, err)
	}
	return fc
}

func errorCode(err error) string {
	var ae smithy.APIError
	if err == nil {
		return ""
	}
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return "?" + err.Error()
}

// TestFaultsEveryNthInternal: every third PutRecord fails with
// InternalFailure (HTTP 500): calls 3, 6 and 9 of ten; the metrics and the
// rule's counters say so.
func TestFaultsEveryNthInternal(t *testing.T) {
	t.Parallel()
	m := &faultMetrics{}
	e := newEnv(t, server.Config{Metrics: m,
		Faults: mustParseFaults(t, `{"seed":42,"rules":[{"operation":"PutRecord","kind":"internal","every":3}]}`)})
	e.createStream("s", 1)
	var failed []int
	for i := 1; i <= 10; i++ {
		_, err := e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte{byte(i)}})
		if err != nil {
			wantCode(t, err, "InternalFailure")
			var re interface{ HTTPStatusCode() int }
			if errors.As(err, &re) && re.HTTPStatusCode() != 500 {
				t.Errorf("call %d: status %d, want 500", i, re.HTTPStatusCode())
			}
			failed = append(failed, i)
		}
	}
	if !slices.Equal(failed, []int{3, 6, 9}) {
		t.Fatalf("failed calls %v, want [3 6 9]", failed)
	}
	if got := len(e.readShard("s", shardID(0))); got != 7 {
		t.Errorf("%d records stored, want 7", got)
	}
	if got := m.get("PutRecord", "internal"); got != 3 {
		t.Errorf("Metrics.Fault(PutRecord, internal) %d times, want 3", got)
	}
	st := e.srv.Faults()
	if st.Seed == nil || *st.Seed != 42 || len(st.Rules) != 1 || st.Rules[0].Matched != 10 || st.Rules[0].Injected != 3 {
		t.Errorf("Faults() = %+v, want seed 42 and one rule matched 10, injected 3", st)
	}
}

// TestFaultsPutRecordsFraction: a throttle rule of PutRecords fails a
// fraction of each call's records with ProvisionedThroughputExceededException
// and stores the others; the same seed picks the same records.
func TestFaultsPutRecordsFraction(t *testing.T) {
	t.Parallel()
	m := &faultMetrics{}
	e := newEnv(t, server.Config{Metrics: m})
	e.createStream("s", 2)
	rules := `{"seed":7,"rules":[{"operation":"PutRecords","stream":"s","kind":"throttle","fraction":0.3}]}`
	put := func() (failed []int, stored map[string]bool) {
		t.Helper()
		var entries []types.PutRecordsRequestEntry
		for i := range 10 {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte(fmt.Sprint(i))})
		}
		out, err := e.nr.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries})
		noErr(t, err, "PutRecords")
		stored = map[string]bool{}
		for i, r := range out.Records {
			switch aws.ToString(r.ErrorCode) {
			case "":
				stored[aws.ToString(r.SequenceNumber)] = true
			case "ProvisionedThroughputExceededException":
				failed = append(failed, i)
			default:
				t.Fatalf("record %d: error %s", i, aws.ToString(r.ErrorCode))
			}
		}
		if int(aws.ToInt32(out.FailedRecordCount)) != len(failed) {
			t.Fatalf("FailedRecordCount %d, %d records failed", aws.ToInt32(out.FailedRecordCount), len(failed))
		}
		return failed, stored
	}
	noErr(t, e.srv.SetFaults(mustParseFaults(t, rules)), "SetFaults")
	failed1, stored1 := put()
	if len(failed1) != 3 {
		t.Fatalf("failed records %v, want 3 of 10", failed1)
	}
	noErr(t, e.srv.SetFaults(mustParseFaults(t, rules)), "SetFaults")
	failed2, stored2 := put()
	if !slices.Equal(failed1, failed2) {
		t.Errorf("the same seed failed records %v, then %v", failed1, failed2)
	}
	// Exactly the records answered with a sequence number are stored.
	got := map[string]bool{}
	for _, recs := range e.readAll("s") {
		for _, r := range recs {
			got[aws.ToString(r.SequenceNumber)] = true
		}
	}
	if len(got) != len(stored1)+len(stored2) {
		t.Fatalf("%d records stored, want %d", len(got), len(stored1)+len(stored2))
	}
	for seq := range stored1 {
		if !got[seq] {
			t.Errorf("acknowledged record %s not stored", seq)
		}
	}
	if got := m.get("PutRecords", "throttle"); got != 2 {
		t.Errorf("Metrics.Fault(PutRecords, throttle) %d times, want 2 (once per call)", got)
	}
	// Another stream is not concerned.
	e.createStream("other", 1)
	out, err := e.nr.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("other"),
		Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: []byte("x")}}})
	noErr(t, err, "PutRecords other")
	if aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Errorf("stream other: %d records failed", aws.ToInt32(out.FailedRecordCount))
	}
}

// TestFaultsStreamScope: a rule of a stream hits the calls that name it by
// name or ARN (and GetRecords by its iterator), and no other; throttle fails
// whole calls of other operations than PutRecords.
func TestFaultsStreamScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("orders", 1)
	e.createStream("other", 1)
	it := e.iterator("orders", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
	otherIt := e.iterator("other", shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
	noErr(t, e.srv.SetFaults(mustParseFaults(t, `{"rules":[
		{"stream":"orders","kind":"throttle"},
		{"operation":"ListStreams","kind":"internal"}]}`)), "SetFaults")
	for _, tc := range []struct {
		what string
		err  error
		want string
	}{
		{"PutRecord orders", second(e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String("k"), Data: []byte("x")})), "ProvisionedThroughputExceededException"},
		{"PutRecord other", second(e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("other"), PartitionKey: aws.String("k"), Data: []byte("x")})), ""},
		{"DescribeStreamSummary orders by ARN", second(e.nr.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: aws.String(arn("orders"))})), "ProvisionedThroughputExceededException"},
		{"DescribeStreamSummary other", second(e.nr.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("other")})), ""},
		{"GetRecords orders", second(e.nr.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)})), "ProvisionedThroughputExceededException"},
		{"GetRecords other", second(e.nr.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(otherIt)})), ""},
		{"ListStreams", second(e.nr.ListStreams(e.ctx, &kinesis.ListStreamsInput{})), "InternalFailure"},
	} {
		if got := errorCode(tc.err); got != tc.want {
			t.Errorf("%s: error %q, want %q", tc.what, got, tc.want)
		}
	}
	// Cleared, nothing fails.
	noErr(t, e.srv.SetFaults(server.FaultConfig{}), "SetFaults (none)")
	_, err := e.nr.ListStreams(e.ctx, &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams after clearing the rules")
	if st := e.srv.Faults(); st.Seed != nil || len(st.Rules) != 0 {
		t.Errorf("Faults() after clearing = %+v", st)
	}
}

func second[T any](_ T, err error) error { return err }

// TestFaultsExpiredIterator: every second GetRecords of stream a fails with
// ExpiredIteratorException; stream b's never do.
func TestFaultsExpiredIterator(t *testing.T) {
	t.Parallel()
	m := &faultMetrics{}
	e := newEnv(t, server.Config{Metrics: m,
		Faults: mustParseFaults(t, `{"rules":[{"operation":"GetRecords","stream":"a","kind":"expired-iterator","every":2}]}`)})
	e.createStream("a", 1)
	e.createStream("b", 1)
	for _, name := range []string{"a", "b"} {
		it := e.iterator(name, shardID(0), types.ShardIteratorTypeTrimHorizon, nil, nil)
		var codes []string
		for range 4 {
			_, err := e.nr.GetRecords(e.ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(it)})
			codes = append(codes, errorCode(err))
		}
		want := []string{"", "", "", ""}
		if name == "a" {
			want = []string{"", "ExpiredIteratorException", "", "ExpiredIteratorException"}
		}
		if !slices.Equal(codes, want) {
			t.Errorf("stream %s: GetRecords errors %q, want %q", name, codes, want)
		}
	}
	if got := m.get("GetRecords", "expired-iterator"); got != 2 {
		t.Errorf("Metrics.Fault(GetRecords, expired-iterator) %d times, want 2", got)
	}
}

// TestFaultsCutSubscription: a cut subscription delivers its two events and
// then ends with an InternalFailureException message; the next one (the rule
// fires on every other subscription) runs on.
func TestFaultsCutSubscription(t *testing.T) {
	t.Parallel()
	m := &faultMetrics{}
	e := newEnv(t, server.Config{Metrics: m, SubscriptionKeepAlive: time.Hour,
		Faults: mustParseFaults(t, `{"rules":[{"kind":"cut-subscription","stream":"s","afterEvents":2,"every":1}]}`)})
	e.createStream("s", 1)
	c := e.register("s", "c")
	e.put("s", "k", []byte("a"))
	s := e.subscribe(c, shardID(0), startPos(types.ShardIteratorTypeTrimHorizon))
	recs, _ := s.collect(1, 30*time.Second)
	e.put("s", "k", []byte("b"))
	more, last := s.collect(1, 30*time.Second)
	recs = append(recs, more...)
	if len(recs) != 2 || string(recs[0].Data) != "a" || string(recs[1].Data) != "b" {
		t.Fatalf("records %v before the cut, want a, b", recs)
	}
	ev, err := s.next(30 * time.Second)
	if ev != nil {
		t.Fatalf("a third event %+v, want the cut", ev)
	}
	wantCode(t, err, "InternalFailureException")
	if got := m.get("SubscribeToShard", "cut-subscription"); got != 1 {
		t.Errorf("Metrics.Fault(SubscribeToShard, cut-subscription) %d times, want 1", got)
	}
	// The consumer resumes after its last continuation and misses nothing.
	noErr(t, e.srv.SetFaults(server.FaultConfig{}), "SetFaults (none)")
	e.put("s", "k", []byte("c"))
	s2 := e.subscribe(c, shardID(0), seqPos(types.ShardIteratorTypeAfterSequenceNumber, aws.ToString(last.ContinuationSequenceNumber)))
	recs, _ = s2.collect(1, 30*time.Second)
	if string(recs[0].Data) != "c" {
		t.Fatalf("after resuming: %q, want c", recs[0].Data)
	}
}

// TestFaultsLatency: in a synctest bubble the injected latency is exactly
// the time a call takes; calls the rule does not hit take none.
func TestFaultsLatency(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m := &faultMetrics{}
		e := newBubbleEnv(t, server.Config{Metrics: m,
			Faults: mustParseFaults(t, `{"rules":[
				{"operation":"DescribeStreamSummary","kind":"latency","latency":"250ms"},
				{"operation":"DescribeStreamSummary","stream":"slow","kind":"latency","latency":"1s"}]}`)})
		e.createStream("slow", 1)
		e.createStream("fast", 1)
		timed := func(name string) time.Duration {
			t0 := time.Now()
			_, err := e.nr.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
			noErr(t, err, "DescribeStreamSummary "+name)
			return time.Since(t0)
		}
		if d := timed("slow"); d != 1250*time.Millisecond {
			t.Errorf("DescribeStreamSummary slow took %v, want 1.25s (both rules)", d)
		}
		if d := timed("fast"); d != 250*time.Millisecond {
			t.Errorf("DescribeStreamSummary fast took %v, want 250ms", d)
		}
		t0 := time.Now()
		_, err := e.nr.ListStreams(e.ctx, &kinesis.ListStreamsInput{})
		noErr(t, err, "ListStreams")
		if d := time.Since(t0); d != 0 {
			t.Errorf("ListStreams took %v, want no delay", d)
		}
		if got := m.get("DescribeStreamSummary", "latency"); got != 3 {
			t.Errorf("Metrics.Fault(DescribeStreamSummary, latency) %d times, want 3", got)
		}
	})
}

// TestFaultsSlowFsync: in a synctest bubble a PutRecord (FsyncAlways)
// waits for its sync, which the rule slows by exactly its latency.
func TestFaultsSlowFsync(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		m := &faultMetrics{}
		e := newBubbleEnv(t, server.Config{Metrics: m})
		e.createStream("s", 1)
		e.put("s", "k", []byte("warm")) // opens the shard log
		noErr(t, e.srv.SetFaults(mustParseFaults(t, `{"rules":[{"kind":"slow-fsync","latency":"2s"}]}`)), "SetFaults")
		t0 := time.Now()
		e.put("s", "k", []byte("x"))
		d := time.Since(t0)
		n := m.get("fsync", "slow-fsync")
		if n < 1 || d != time.Duration(n)*2*time.Second {
			t.Errorf("PutRecord took %v with %d slowed syncs, want 2s each (and at least one)", d, n)
		}
		if st := e.srv.Faults(); st.Rules[0].Injected != uint64(n) {
			t.Errorf("rule counters %+v, want %d injected", st.Rules[0], n)
		}
	})
}

// TestFaultsProbabilitySeed: a probability rule with a seed fails the same
// calls each run.
func TestFaultsProbabilitySeed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, server.Config{})
	e.createStream("s", 1)
	run := func() []int {
		noErr(t, e.srv.SetFaults(mustParseFaults(t, `{"seed":3,"rules":[{"operation":"DescribeStreamSummary","kind":"internal","probability":0.5}]}`)), "SetFaults")
		var failed []int
		for i := range 20 {
			if _, err := e.nr.DescribeStreamSummary(e.ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")}); err != nil {
				wantCode(t, err, "InternalFailure")
				failed = append(failed, i)
			}
		}
		return failed
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Errorf("seed 3 failed calls %v, then %v", a, b)
	}
	if len(a) == 0 || len(a) == 20 {
		t.Errorf("probability 0.5 failed %d of 20 calls", len(a))
	}
}

// TestFaultsValidation: bad rules are refused with errors that name the
// member at fault, by ParseFaults, SetFaults and New.
func TestFaultsValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ js, want string }{
		{`{"rules":[{"kind":"explode"}]}`, `rules[0].kind: "explode" is not a fault kind`},
		{`{"rules":[{"kind":"internal","operation":"PutRecordz"}]}`, `rules[0].operation: unknown operation "PutRecordz"`},
		{`{"rules":[{"kind":"internal"},{"kind":"internal","probability":1.5}]}`, `rules[1].probability: 1.5 is not a probability`},
		{`{"rules":[{"kind":"internal","every":-1}]}`, `rules[0].every: -1 is negative`},
		{`{"rules":[{"kind":"internal","every":2,"probability":0.5}]}`, `rules[0].every: probability and every exclude each other`},
		{`{"rules":[{"kind":"latency"}]}`, `rules[0].latency: kind latency needs a positive latency`},
		{`{"rules":[{"kind":"internal","latency":"1s"}]}`, `rules[0].latency: only for kinds latency and slow-fsync`},
		{`{"rules":[{"kind":"latency","latency":"soon"}]}`, `rules[0].latency`},
		{`{"rules":[{"kind":"internal","afterEvents":3}]}`, `rules[0].afterEvents: only for kind cut-subscription`},
		{`{"rules":[{"kind":"throttle","fraction":2}]}`, `rules[0].fraction: 2 is not a fraction`},
		{`{"rules":[{"kind":"throttle","operation":"PutRecord","fraction":0.5}]}`, `rules[0].fraction: only for PutRecords`},
		{`{"rules":[{"kind":"internal","fraction":0.5}]}`, `rules[0].fraction: only for kind throttle`},
		{`{"rules":[{"kind":"expired-iterator","operation":"PutRecord"}]}`, `rules[0].operation: kind expired-iterator applies to GetRecords only`},
		{`{"rules":[{"kind":"cut-subscription","operation":"GetRecords"}]}`, `rules[0].operation: kind cut-subscription applies to SubscribeToShard only`},
		{`{"rules":[{"kind":"slow-fsync","latency":"1s","operation":"PutRecord"}]}`, `rules[0].operation: kind slow-fsync applies to the storage engine's syncs`},
		{`{"rules":[{"kind":"slow-fsync","latency":"1s","stream":"s"}]}`, `rules[0].stream: kind slow-fsync applies to every stream's syncs`},
		{`{"rules":[{"kind":"internal","chance":0.5}]}`, `rules[0]: unknown field "chance"`},
		{`{"seed":-1,"rules":[]}`, `seed`},
	} {
		_, err := server.ParseFaults([]byte(tc.js))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFaults(%s) = %v, want an error containing %q", tc.js, err, tc.want)
		}
	}
	bad := server.FaultConfig{Rules: []server.FaultRule{{Kind: "latency"}}}
	if _, err := server.New(server.Config{DataDir: t.TempDir(), Faults: bad}); err == nil || !strings.Contains(err.Error(), "rules[0].latency") {
		t.Errorf("New with a bad rule: %v", err)
	}
	e := newEnv(t, server.Config{})
	_, err := e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{}) // Serve is running (before the cleanup's Shutdown)
	noErr(t, err, "ListStreams")
	if err := e.srv.SetFaults(bad); err == nil || !strings.Contains(err.Error(), "rules[0].latency") {
		t.Errorf("SetFaults with a bad rule: %v", err)
	}
	if st := e.srv.Faults(); len(st.Rules) != 0 {
		t.Errorf("a refused rule set is in force: %+v", st)
	}
	// The status marshals back into rules that parse.
	noErr(t, e.srv.SetFaults(server.FaultConfig{Seed: seed(5), Rules: []server.FaultRule{{Kind: "latency", Latency: server.FaultDuration(200 * time.Millisecond), Operation: "PutRecord"}}}), "SetFaults")
	js, err := e.srv.MarshalFaults()
	noErr(t, err, "MarshalFaults")
	if want := `{"seed":5,"rules":[{"operation":"PutRecord","kind":"latency","latency":"200ms","matched":0,"injected":0}]}`; string(js) != want {
		t.Errorf("MarshalFaults = %s, want %s", js, want)
	}
}
