package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine/memengine"
	"github.com/shoalstream/shoal/server"
)

// The benchmarks of this file drive the server's HTTP handler in process,
// without a network or an SDK in the way: what they measure is the
// server's own cost of a call (decode, routing, append, response encode),
// per record, and its allocations per record. "mem" runs on the memory
// engine (CPU only); "file" on the file engine with fsync always, the
// server's default (its time is mostly fdatasync, its allocations are the
// server's).
//
//	go test -run '^$' -bench 'BenchmarkHandler' -count 6 ./server/

// handlerRig calls a server's handler directly.
type handlerRig struct {
	h   http.Handler
	url *url.URL
}

// benchRW is a minimal http.ResponseWriter that keeps the status and the
// body of the last response.
type benchRW struct {
	hdr  http.Header
	code int
	body bytes.Buffer
}

func (w *benchRW) Header() http.Header         { return w.hdr }
func (w *benchRW) WriteHeader(code int)        { w.code = code }
func (w *benchRW) Write(p []byte) (int, error) { return w.body.Write(p) }
func (w *benchRW) Flush()                      {}

func startHandlerRig(b *testing.B, engine string) *handlerRig {
	b.Helper()
	cfg := server.Config{Logger: zap.NewNop(), AutoSplitWindow: -1}
	switch engine {
	case "mem":
		eng := memengine.New(memengine.Config{})
		b.Cleanup(func() { _ = eng.Close() })
		cfg.Engine = eng
	case "file":
		cfg.DataDir = b.TempDir()
	default:
		b.Fatalf("unknown engine %q", engine)
	}
	srv, err := server.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	u, _ := url.Parse("http://shoal.test/")
	return &handlerRig{h: srv.Handler(), url: u}
}

// call runs one operation and returns the response body; any status but
// 200 fails b.
func (r *handlerRig) call(b *testing.B, w *benchRW, op string, body []byte) []byte {
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           r.url,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.1"}, "X-Amz-Target": {"Kinesis_20131202." + op}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          "shoal.test",
	}
	req = req.WithContext(context.Background())
	w.body.Reset()
	w.code = 0
	r.h.ServeHTTP(w, req)
	if w.code != http.StatusOK {
		b.Fatalf("%s: status %d: %s", op, w.code, w.body.String())
	}
	return w.body.Bytes()
}

// putBody is a PutRecords request of n records of size bytes with keys
// drawn from 10,000, as the SDK writes it.
func putBody(stream string, n, size int) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, `{"Records":[`)
	data := make([]byte, size)
	for i := range n {
		for j := range data {
			data[j] = byte(i*31 + j)
		}
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"Data":"%s","PartitionKey":"bench-%d"}`, base64.StdEncoding.EncodeToString(data), (i*7919)%10000)
	}
	fmt.Fprintf(&sb, `],"StreamName":%q}`, stream)
	return []byte(sb.String())
}

func (r *handlerRig) createStream(b *testing.B, name string, shards int) {
	w := &benchRW{hdr: http.Header{}}
	r.call(b, w, "CreateStream", fmt.Appendf(nil, `{"StreamName":%q,"ShardCount":%d}`, name, shards))
}

// perRecord reports ns/record and allocs/record of a benchmark whose every
// op handles n records; allocs is the malloc count before the loop.
func perRecord(b *testing.B, n int, allocs uint64) {
	b.Helper()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ops := float64(b.N)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/ops/float64(n), "ns/record")
	b.ReportMetric(float64(ms.Mallocs-allocs)/ops/float64(n), "allocs/record")
}

func mallocCount() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// BenchmarkHandlerPutRecords measures one PutRecords call of 500 records
// of 100 B over 4 shards through the handler.
func BenchmarkHandlerPutRecords(b *testing.B) {
	for _, eng := range []string{"mem", "file"} {
		for _, size := range []int{100, 1024} {
			b.Run(fmt.Sprintf("%s/500x%dB", eng, size), func(b *testing.B) {
				r := startHandlerRig(b, eng)
				r.createStream(b, "bench", 4)
				body := putBody("bench", 500, size)
				w := &benchRW{hdr: http.Header{}}
				for range 3 {
					r.call(b, w, "PutRecords", body)
				}
				b.ReportAllocs()
				m := mallocCount()
				for b.Loop() {
					r.call(b, w, "PutRecords", body)
				}
				perRecord(b, 500, m)
			})
		}
	}
}

// BenchmarkHandlerPutRecord measures one PutRecord call of 100 B.
func BenchmarkHandlerPutRecord(b *testing.B) {
	for _, eng := range []string{"mem", "file"} {
		b.Run(eng, func(b *testing.B) {
			r := startHandlerRig(b, eng)
			r.createStream(b, "bench", 4)
			body := fmt.Appendf(nil, `{"Data":"%s","PartitionKey":"bench-17","StreamName":"bench"}`, base64.StdEncoding.EncodeToString(make([]byte, 100)))
			w := &benchRW{hdr: http.Header{}}
			r.call(b, w, "PutRecord", body)
			b.ReportAllocs()
			m := mallocCount()
			for b.Loop() {
				r.call(b, w, "PutRecord", body)
			}
			perRecord(b, 1, m)
		})
	}
}

// BenchmarkHandlerGetRecords measures GetRecords calls of 10,000 records
// of 100 B (20 PutRecords batches of 500) on the file engine, reading the
// same records again with one iterator.
func BenchmarkHandlerGetRecords(b *testing.B) {
	r := startHandlerRig(b, "file")
	r.createStream(b, "bench", 1)
	w := &benchRW{hdr: http.Header{}}
	body := putBody("bench", 500, 100)
	for range 20 {
		r.call(b, w, "PutRecords", body)
	}
	out := r.call(b, w, "GetShardIterator", []byte(`{"StreamName":"bench","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`))
	_, it, _ := strings.Cut(string(out), `"ShardIterator":"`)
	it, _, _ = strings.Cut(it, `"`)
	get := fmt.Appendf(nil, `{"ShardIterator":%q,"Limit":10000}`, it)
	if got := r.call(b, w, "GetRecords", get); bytes.Count(got, []byte(`"SequenceNumber"`)) != 10000 {
		b.Fatalf("GetRecords read %d records, want 10000", bytes.Count(got, []byte(`"SequenceNumber"`)))
	}
	b.ReportAllocs()
	m := mallocCount()
	for b.Loop() {
		r.call(b, w, "GetRecords", get)
	}
	perRecord(b, 10000, m)
}
