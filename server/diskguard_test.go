package server_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/shoalstream/shoal/engine/memengine"
	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/prommetrics"
)

// fakeDisk is a file system whose usage the test sets (in percent of 100
// bytes); it counts its measurements.
type fakeDisk struct {
	mu    sync.Mutex
	used  uint64
	err   error
	calls int
}

func (d *fakeDisk) set(used uint64, err error) {
	d.mu.Lock()
	d.used, d.err = used, err
	d.mu.Unlock()
}

func (d *fakeDisk) usage() (used, total uint64, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	return d.used, 100, d.err
}

func (d *fakeDisk) measured() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// guardSample is one DiskGuard call.
type guardSample struct {
	engaged bool
	used    float64
}

// guardMetrics records the disk guard's samples and the write-throttled
// records, and passes everything on to Prometheus collectors.
type guardMetrics struct {
	*prommetrics.Metrics
	mu        sync.Mutex
	samples   []guardSample
	throttled int
}

func (m *guardMetrics) DiskGuard(engaged bool, used float64) {
	m.mu.Lock()
	m.samples = append(m.samples, guardSample{engaged, used})
	m.mu.Unlock()
	m.Metrics.DiskGuard(engaged, used)
}

func (m *guardMetrics) Throttled(stream string, write bool, n int) {
	if write {
		m.mu.Lock()
		m.throttled += n
		m.mu.Unlock()
	}
	m.Metrics.Throttled(stream, write, n)
}

func (m *guardMetrics) take() ([]guardSample, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, n := m.samples, m.throttled
	m.samples, m.throttled = nil, 0
	return s, n
}

// gauge reads an unlabelled gauge from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

func diskMessage(used int) string {
	return fmt.Sprintf("Rate exceeded: the server's disk is %d%% full (high-water mark 95%%); writes resume below 90%%.", used)
}

// wantDiskRefused asserts err is the disk guard's refusal at used percent.
func wantDiskRefused(t *testing.T, err error, used int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ProvisionedThroughputExceededException" || ae.ErrorMessage() != diskMessage(used) {
		t.Fatalf("got %v, want ProvisionedThroughputExceededException: %s", err, diskMessage(used))
	}
}

// The disk guard refuses PutRecord and PutRecords from the high-water mark
// until usage falls below the low-water mark, reads go on, and every
// sample reaches the metrics. The sampler's ticker never fires (an hour):
// the test samples by hand.
func TestDiskGuard(t *testing.T) {
	disk := &fakeDisk{used: 50}
	reg := prometheus.NewRegistry()
	m := &guardMetrics{Metrics: prommetrics.New(reg)}
	core, logs := observer.New(zapcore.InfoLevel)
	logger := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
	e := newEnv(t, server.Config{DiskUsage: disk.usage, DiskCheckInterval: time.Hour, Metrics: m, Logger: logger})
	e.createStream("dg", 2)

	// New took the first sample.
	if s, _ := m.take(); len(s) != 1 || s[0] != (guardSample{false, 0.5}) {
		t.Fatalf("samples after New: %v, want one {false 0.5}", s)
	}
	before := e.put("dg", "a", []byte("before"))

	put := func() error {
		_, err := e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("dg"), PartitionKey: aws.String("k"), Data: []byte("x")})
		return err
	}
	putRecords := func() *kinesis.PutRecordsOutput {
		t.Helper()
		out, err := e.nr.PutRecords(e.ctx, &kinesis.PutRecordsInput{StreamName: aws.String("dg"), Records: []types.PutRecordsRequestEntry{
			{PartitionKey: aws.String("a"), Data: []byte("1")}, {PartitionKey: aws.String("b"), Data: []byte("2")}, {PartitionKey: aws.String("c"), Data: []byte("3")}}})
		if err != nil {
			t.Fatalf("PutRecords: %v", err)
		}
		return out
	}
	wantRecordsRefused := func(used int) {
		t.Helper()
		out := putRecords()
		if aws.ToInt32(out.FailedRecordCount) != 3 {
			t.Fatalf("PutRecords: FailedRecordCount %d, want 3", aws.ToInt32(out.FailedRecordCount))
		}
		for i, r := range out.Records {
			if aws.ToString(r.ErrorCode) != "ProvisionedThroughputExceededException" || aws.ToString(r.ErrorMessage) != diskMessage(used) || r.SequenceNumber != nil || r.ShardId != nil {
				t.Fatalf("PutRecords entry %d: %+v, want ProvisionedThroughputExceededException: %s", i, r, diskMessage(used))
			}
		}
	}
	wantAccepted := func() {
		t.Helper()
		if err := put(); err != nil {
			t.Fatalf("PutRecord: %v", err)
		}
		if out := putRecords(); aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords: FailedRecordCount %d, want 0: %+v", aws.ToInt32(out.FailedRecordCount), out.Records)
		}
	}
	sample := func(used uint64, want guardSample) {
		t.Helper()
		disk.set(used, nil)
		e.srv.SampleDiskNow()
		if s, _ := m.take(); len(s) != 1 || s[0] != want {
			t.Fatalf("samples at %d%%: %v, want %v", used, s, want)
		}
		refused := 0.0
		if want.engaged {
			refused = 1
		}
		if g := gauge(t, reg, "shoal_disk_writes_refused"); g != refused {
			t.Fatalf("shoal_disk_writes_refused at %d%%: %v, want %v", used, g, refused)
		}
		if g := gauge(t, reg, "shoal_disk_used_ratio"); g != want.used {
			t.Fatalf("shoal_disk_used_ratio at %d%%: %v, want %v", used, g, want.used)
		}
	}

	sample(94, guardSample{false, 0.94})
	wantAccepted()
	m.take()

	// At the high-water mark: refused, with the disk named; reads go on.
	sample(96, guardSample{true, 0.96})
	wantDiskRefused(t, put(), 96)
	wantRecordsRefused(96)
	if _, n := m.take(); n != 4 {
		t.Fatalf("write-throttled records: %d, want 4 (1 PutRecord, 3 PutRecords entries)", n)
	}
	recs := e.readShard("dg", aws.ToString(before.ShardId))
	if len(recs) == 0 || string(recs[0].Data) != "before" {
		t.Fatalf("GetRecords while the disk guard is engaged: %d records, want the first to be \"before\"", len(recs))
	}
	// A dry run takes no capacity and is not refused, as with throttling.
	_, err := e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("dg"), PartitionKey: aws.String("k"), Data: []byte("x"), DryRun: aws.Bool(true)})
	wantCode(t, err, "DryRunOperationException")

	// Between the marks: still refused (hysteresis), with the usage of now.
	sample(92, guardSample{true, 0.92})
	wantDiskRefused(t, put(), 92)
	sample(90, guardSample{true, 0.90})
	wantRecordsRefused(90)

	// A failed measurement changes nothing and reports no sample.
	disk.set(10, errors.New("statfs: input/output error"))
	e.srv.SampleDiskNow()
	if s, _ := m.take(); len(s) != 0 {
		t.Fatalf("samples after a failed measurement: %v, want none", s)
	}
	wantDiskRefused(t, put(), 90)

	// Below the low-water mark: writes resume.
	sample(89, guardSample{false, 0.89})
	wantAccepted()
	sample(94, guardSample{false, 0.94})
	wantAccepted()
	sample(95, guardSample{true, 0.95})
	wantDiskRefused(t, put(), 95)
	sample(30, guardSample{false, 0.30})
	wantAccepted()

	var engaged, released int
	for _, l := range logs.All() {
		switch {
		case strings.HasPrefix(l.Message, "disk guard engaged") && l.Level == zapcore.WarnLevel:
			engaged++
		case strings.HasPrefix(l.Message, "disk guard released") && l.Level == zapcore.InfoLevel:
			released++
		}
	}
	if engaged != 2 || released != 2 {
		t.Errorf("logs: %d warnings of the guard engaging and %d infos of it releasing, want 2 and 2", engaged, released)
	}
	if n := logs.FilterMessageSnippet("cannot measure").Len(); n != 1 {
		t.Errorf("logs: %d warnings of a failed measurement, want 1", n)
	}
}

// Marks: defaults, a low mark derived from a custom high one, validation,
// and a negative mark turning the guard off.
func TestDiskGuardConfig(t *testing.T) {
	for _, c := range []struct {
		name      string
		high, low float64
		interval  time.Duration
	}{
		{"high above 1", 1.5, 0, 0},
		{"low above 1", 0, 1.2, 0},
		{"low above high", 0.8, 0.85, 0},
		{"negative interval", 0, 0, -time.Second},
	} {
		_, err := server.New(server.Config{Engine: memengine.New(memengine.Config{}), DiskHighWater: c.high, DiskLowWater: c.low, DiskCheckInterval: c.interval})
		if err == nil || !strings.Contains(err.Error(), "Disk") {
			t.Errorf("%s: New: %v, want a Disk* configuration error", c.name, err)
		}
	}

	// Off: never measured, never refused.
	disk := &fakeDisk{used: 100}
	e := newEnv(t, server.Config{DiskUsage: disk.usage, DiskHighWater: -1, DiskCheckInterval: time.Hour})
	e.createStream("off", 1)
	e.srv.SampleDiskNow()
	e.put("off", "k", []byte("x"))
	if n := disk.measured(); n != 0 {
		t.Errorf("guard off: the disk was measured %d times", n)
	}

	// A high mark of 80 %: the low one defaults to 75 %.
	disk = &fakeDisk{used: 80}
	e = newEnv(t, server.Config{DiskUsage: disk.usage, DiskHighWater: 0.8, DiskCheckInterval: time.Hour})
	e.createStream("custom", 1)
	_, err := e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("custom"), PartitionKey: aws.String("k"), Data: []byte("x")})
	var ae smithy.APIError
	want := "Rate exceeded: the server's disk is 80% full (high-water mark 80%); writes resume below 75%."
	if !errors.As(err, &ae) || ae.ErrorMessage() != want {
		t.Fatalf("PutRecord at 80%%: %v, want %q", err, want)
	}
}

// Without DiskUsage the guard measures the data directory with statfs
// (Linux), only when the server stores its data there.
func TestDiskGuardStatfs(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the default measurement is Linux's statfs")
	}
	// Any file system holding a temporary directory is more than 0.01 %
	// used: the guard engages at New's first sample.
	e := newEnv(t, server.Config{DiskHighWater: 0.0001, DiskLowWater: 0.00005, DiskCheckInterval: time.Hour})
	e.createStream("fs", 1)
	_, err := e.nr.PutRecord(e.ctx, &kinesis.PutRecordInput{StreamName: aws.String("fs"), PartitionKey: aws.String("k"), Data: []byte("x")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ProvisionedThroughputExceededException" || !strings.Contains(ae.ErrorMessage(), "the server's disk is") {
		t.Fatalf("PutRecord with a high-water mark of 0.01%%: %v, want the disk guard's refusal", err)
	}
	// Another engine than the file engine: nothing to guard.
	e = newEnv(t, server.Config{Engine: memengine.New(memengine.Config{}), DiskHighWater: 0.0001, DiskLowWater: 0.00005, DiskCheckInterval: time.Hour})
	e.createStream("mem", 1)
	e.put("mem", "k", []byte("x"))
}
