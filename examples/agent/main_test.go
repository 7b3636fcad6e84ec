package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/examples/internal/exkit"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

// appendLines appends "<tag> <i>" for i in [from, to) to path, creating it
// if needed, as a logger would.
func appendLines(t *testing.T, path, tag string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}()
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s %d\n", tag, i)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

// shippedLine is one user record read back from the stream.
type shippedLine struct{ key, data string }

// readStream reads every user record of every shard, in shard order.
func readStream(ctx context.Context, client *kinesis.Client, stream string) ([]shippedLine, error) {
	shards, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		return nil, err
	}
	var lines []shippedLine
	for _, s := range shards.Shards {
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, err
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				return nil, err
			}
			for _, r := range out.Records {
				subs, err := aggregation.Deaggregate(aws.ToString(r.PartitionKey), r.Data)
				if err != nil && !errors.Is(err, aggregation.ErrNotAggregated) {
					return nil, err
				}
				for _, sr := range subs {
					lines = append(lines, shippedLine{key: sr.PartitionKey, data: string(sr.Data)})
				}
			}
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return lines, nil
}

// expectation is what one file generation ("tag") must have shipped: lines
// "<tag> 0" to "<tag> n-1", under the partition key, in order, once each.
type expectation struct {
	tag, key string
	n        int
}

// check compares the lines read back with the expectations and returns
// what is wrong, or nil.
func check(lines []shippedLine, want []expectation) error {
	var problems []string
	next := map[string]int{} // tag -> next line number expected
	keyOf := map[string]string{}
	for _, e := range want {
		keyOf[e.tag] = e.key
		next[e.tag] = 0
	}
	for _, l := range lines {
		tag, num, ok := strings.Cut(l.data, " ")
		i, err := strconv.Atoi(num)
		if _, known := next[tag]; !ok || err != nil || !known {
			problems = append(problems, fmt.Sprintf("unexpected line %q", l.data))
			continue
		}
		if l.key != keyOf[tag] {
			problems = append(problems, fmt.Sprintf("line %q has key %q, want %q", l.data, l.key, keyOf[tag]))
		}
		if i != next[tag] {
			problems = append(problems, fmt.Sprintf("%s: line %d where %d was next (lost, repeated or out of order)", tag, i, next[tag]))
		}
		next[tag] = i + 1
	}
	for _, e := range want {
		if next[e.tag] != e.n {
			problems = append(problems, fmt.Sprintf("%s: got through line %d, want %d lines", e.tag, next[e.tag]-1, e.n))
		}
	}
	if len(problems) > 0 {
		if len(problems) > 20 {
			problems = append(problems[:20], fmt.Sprintf("... and %d more", len(problems)-20))
		}
		return fmt.Errorf("%d lines read back:\n%s", len(lines), strings.Join(problems, "\n"))
	}
	return nil
}

// TestAgent follows three files through rotation by rename (with the old
// file still written after the rename), copytruncate, and a stop and
// restart while a file is being written, then reads the stream back: every
// line exactly once, in order per file.
func TestAgent(t *testing.T) {
	srv := servertest.Start(t, server.Config{})
	client := srv.Client()
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	a, b, c := filepath.Join(logs, "a.log"), filepath.Join(logs, "b.log"), filepath.Join(logs, "c.log")
	cfg := config{
		Endpoint: srv.Endpoint,
		Stream:   "logs",
		Shards:   2,
		// a: the rotation-safe glob that also matches the rotated file;
		// b: one name, rotated by copytruncate;
		// c: one name, rotated by rename: the old file is followed through
		// its open handle until it is shipped.
		Globs:        []string{filepath.Join(logs, "a.log*"), b, c},
		StateFile:    filepath.Join(dir, "state.json"),
		KeyMode:      keyFile,
		Poll:         20 * time.Millisecond,
		MaxLineBytes: 64 << 10,
		StopTimeout:  30 * time.Second,
		RotatedGrace: 200 * time.Millisecond,
	}
	start := func() (*exkit.Buffer, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		out := &exkit.Buffer{}
		done := make(chan error, 1)
		go func() { done <- run(ctx, cfg, out) }()
		return out, func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("agent: %v\noutput:\n%s", err, out.String())
			}
		}
	}
	shippedSoFar := func(want []expectation) func() error {
		return func() error {
			lines, err := readStream(context.Background(), client, cfg.Stream)
			if err != nil {
				return err
			}
			return check(lines, want)
		}
	}

	appendLines(t, a, "a1", 0, 100)
	appendLines(t, b, "b1", 0, 50)
	appendLines(t, c, "c1", 0, 30)
	out1, stop1 := start()
	// A file's partition key is its name when the agent first sees it:
	// rotate only once the agent follows the files.
	wait.Eventually(t, 30*time.Second, func() error {
		for _, p := range []string{a, b, c} {
			if !strings.Contains(out1.String(), "following "+p+" from offset 0\n") {
				return fmt.Errorf("not following %s yet", p)
			}
		}
		return nil
	})

	// Rotation by rename, twice over: the writer still appends to the old
	// file after the rename, then a new file takes the name.
	appendLines(t, a, "a1", 100, 150)
	if err := os.Rename(a, a+".1"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, a+".1", "a1", 150, 160)
	appendLines(t, a, "a2", 0, 40)
	appendLines(t, c, "c1", 30, 35)
	if err := os.Rename(c, c+".old"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, c+".old", "c1", 35, 40)
	appendLines(t, c, "c2", 0, 20)

	// copytruncate: once b1 is shipped, b.log is emptied and written anew.
	wait.Eventually(t, 30*time.Second, shippedSoFar([]expectation{
		{"a1", "a.log", 160}, {"a2", "a.log", 40}, {"b1", "b.log", 50}, {"c1", "c.log", 40}, {"c2", "c.log", 20},
	}))
	if err := os.Truncate(b, 0); err != nil {
		t.Fatal(err)
	}
	appendLines(t, b, "b2", 0, 10)
	wait.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(out1.String(), "b.log: truncated") {
			return fmt.Errorf("no truncation reported yet")
		}
		return nil
	})

	// c.log.old is let go once it has been quiet for RotatedGrace.
	wait.Eventually(t, 30*time.Second, func() error {
		if !strings.Contains(out1.String(), "c.log: rotated away (no longer matched) and fully shipped") {
			return fmt.Errorf("the renamed c.log is still followed")
		}
		return nil
	})

	// Stop and restart while b.log is being written.
	writing := make(chan struct{})
	go func() {
		defer close(writing)
		for i := 10; i < 210; i += 10 {
			appendLines(t, b, "b2", i, i+10)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(30 * time.Millisecond) // let some of it be written before the stop; any point will do
	stop1()
	if s := out1.String(); !strings.Contains(s, "a.log: renamed to") {
		t.Errorf("rotation not reported:\n%s", s)
	}
	out2, stop2 := start()
	<-writing
	appendLines(t, a, "a2", 40, 60)

	want := []expectation{
		{"a1", "a.log", 160}, {"a2", "a.log", 60},
		{"b1", "b.log", 50}, {"b2", "b.log", 210},
		{"c1", "c.log", 40}, {"c2", "c.log", 20},
	}
	wait.Eventually(t, 30*time.Second, shippedSoFar(want))
	stop2()
	// After the clean stop, nothing more arrived, and the state names the
	// end of every followed file.
	if err := shippedSoFar(want)(); err != nil {
		t.Error(err)
	}
	st, err := loadState(cfg.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 4 {
		t.Errorf("state has %d files, want 4 (a.log, a.log.1, b.log, c.log): %+v", len(st), st)
	}
	for _, f := range st {
		fi, err := os.Stat(f.Path)
		if err != nil {
			t.Errorf("state names %s: %v", f.Path, err)
			continue
		}
		if f.Offset != fi.Size() {
			t.Errorf("%s: saved offset %d, file size %d", f.Path, f.Offset, fi.Size())
		}
	}
	if !strings.Contains(out2.String(), " lines shipped, none left in flight; offsets of 4 files saved") {
		t.Errorf("second run's output:\n%s", out2.String())
	}
	// The two runs together acknowledged each line once.
	total := 0
	for _, out := range []string{out1.String(), out2.String()} {
		var n int
		_, rest, _ := strings.Cut(out, "stopped: ")
		if _, err := fmt.Sscanf(rest, "%d lines shipped", &n); err != nil {
			t.Fatalf("no stop line in:\n%s", out)
		}
		total += n
	}
	if total != 160+60+50+210+40+20 {
		t.Errorf("the runs shipped %d lines in all, want %d", total, 160+60+50+210+40+20)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func itoa(i int) string { return strconv.Itoa(i) }
