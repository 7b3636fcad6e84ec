package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// putFlags are the flags of "bench put" besides the common ones.
type putFlags struct {
	mode      string
	batch     int
	size      int
	keys      int
	keyPrefix string
}

func runPut(ctx context.Context, args []string, out io.Writer) error {
	var c common
	var pf putFlags
	fs := newFlagSet("put", "shoal bench put [flags]",
		`Writes records as fast as -clients goroutines can, each with its own SDK client
and connections, and reports records/s, payload MB/s, calls/s, the latency of
each call (percentiles) and errors. With -mode records each call is a
PutRecords of -batch records; with -mode record each call is one PutRecord.
Every record carries -size random bytes and a partition key drawn at random
from -keys distinct keys, so records spread over the shards.
`, out)
	c.register(fs, 8, "concurrent clients (goroutines), each with its own connections", time.Second)
	fs.StringVar(&pf.mode, "mode", "records", `"records" (PutRecords batches) or "record" (single PutRecord calls)`)
	fs.IntVar(&pf.batch, "batch", 500, "records per PutRecords call (-mode records)")
	fs.IntVar(&pf.size, "size", 100, "bytes of random payload per record")
	fs.IntVar(&pf.keys, "keys", 10000, "number of distinct partition keys")
	fs.StringVar(&pf.keyPrefix, "key-prefix", "bench-", "prefix of the partition keys")
	if done, err := parse(fs, args); done {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	switch {
	case pf.mode != "records" && pf.mode != "record":
		return fmt.Errorf(`bench: -mode must be "records" or "record", got %q`, pf.mode)
	case c.clients < 1:
		return fmt.Errorf("bench: -clients must be >= 1, got %d", c.clients)
	case pf.batch < 1:
		return fmt.Errorf("bench: -batch must be >= 1, got %d", pf.batch)
	case pf.size < 0:
		return fmt.Errorf("bench: -size must be >= 0, got %d", pf.size)
	case pf.keys < 1:
		return fmt.Errorf("bench: -keys must be >= 1, got %d", pf.keys)
	}
	if err := c.loadCredentials(ctx); err != nil {
		return err
	}
	clients := newClients(&c, c.clients)
	open, err := ensureStream(ctx, clients[0], &c, out)
	if err != nil {
		return err
	}
	keys := makeKeys(pf.keyPrefix, pf.keys)
	workers := make([]worker, len(clients))
	for i, cl := range clients {
		workers[i] = newPutWorker(cl, c.stream, pf, keys, uint64(i))
	}
	limit := fmt.Sprintf("duration %v", c.duration)
	if c.requests > 0 {
		limit = fmt.Sprintf("%d requests", c.requests)
	}
	batch := ""
	if pf.mode == "records" {
		batch = fmt.Sprintf(", batch %d", pf.batch)
	}
	_, _ = fmt.Fprintf(out, "bench put: %s, %s, %d clients, mode %s%s, %d B/record, %d keys, %s, warmup %v\n",
		c.endpoint, streamDesc(&c, open), c.clients, pf.mode, batch, pf.size, pf.keys, limit, c.warmup)
	o := drive(ctx, c.plan(), workers, clients)
	r := newResult(&o)
	r.Op, r.Mode, r.Endpoint, r.Stream, r.Shards, r.Clients = "put", pf.mode, c.endpoint, c.stream, open, c.clients
	call := "PutRecords"
	if pf.mode == "record" {
		call = "PutRecord"
	}
	if err := r.print(out, &o, call, c.json); err != nil {
		return err
	}
	if o.interrupted {
		return fmt.Errorf("bench: put interrupted: %w", ctx.Err())
	}
	return nil
}

// makeKeys returns n distinct partition keys: prefix followed by a number.
// The MD5 hashing of Kinesis spreads them evenly over the hash key space.
func makeKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	return keys
}

// payloadPool is the random bytes that records' Data are sliced from.
const payloadPool = 256 << 10

// putWorker makes PutRecords or PutRecord calls with random payloads.
type putWorker struct {
	c       *Client
	stream  *string
	single  bool
	size    int
	keys    []string
	rnd     *rand.Rand
	pool    []byte
	entries []types.PutRecordsRequestEntry
}

func newPutWorker(c *Client, stream string, pf putFlags, keys []string, seed uint64) *putWorker {
	src := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 's', 'h', 'o', 'a', 'l'})
	pool := make([]byte, payloadPool+pf.size)
	_, _ = src.Read(pool)
	w := &putWorker{
		c:      c,
		stream: aws.String(stream),
		single: pf.mode == "record",
		size:   pf.size,
		keys:   keys,
		rnd:    rand.New(src),
		pool:   pool,
	}
	if !w.single {
		w.entries = make([]types.PutRecordsRequestEntry, pf.batch)
	}
	return w
}

// data returns size random-looking bytes (a random window of the pool).
func (w *putWorker) data() []byte {
	off := w.rnd.IntN(payloadPool)
	return w.pool[off : off+w.size : off+w.size]
}

func (w *putWorker) key() *string { return &w.keys[w.rnd.IntN(len(w.keys))] }

func (w *putWorker) finished() bool { return false }

func (w *putWorker) call(ctx context.Context) (callResult, error) {
	if w.single {
		_, err := w.c.PutRecord(ctx, &kinesis.PutRecordInput{
			StreamName:   w.stream,
			Data:         w.data(),
			PartitionKey: w.key(),
		})
		if err != nil {
			return callResult{}, err
		}
		return callResult{records: 1, bytes: int64(w.size)}, nil
	}
	for i := range w.entries {
		w.entries[i] = types.PutRecordsRequestEntry{Data: w.data(), PartitionKey: w.key()}
	}
	out, err := w.c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: w.stream, Records: w.entries})
	if err != nil {
		return callResult{}, err
	}
	return putRecordsResult(w.entries, out), nil
}

// putRecordsResult counts the records a PutRecords call stored and the ones
// the server rejected.
func putRecordsResult(entries []types.PutRecordsRequestEntry, out *kinesis.PutRecordsOutput) callResult {
	failed := int64(aws.ToInt32(out.FailedRecordCount))
	var total int64
	for _, e := range entries {
		total += int64(len(e.Data))
	}
	if failed == 0 {
		return callResult{records: int64(len(entries)), bytes: total}
	}
	if len(out.Records) != len(entries) {
		// Malformed answer: trust the count, estimate the bytes.
		ok := max(int64(len(entries))-failed, 0)
		return callResult{records: ok, bytes: total * ok / int64(len(entries)), failedRecords: failed}
	}
	var res callResult
	for i, r := range out.Records {
		if r.ErrorCode != nil {
			continue
		}
		res.records++
		res.bytes += int64(len(entries[i].Data))
	}
	res.failedRecords = int64(len(entries)) - res.records
	return res
}

// prefill stores exactly n records of size bytes with PutRecords batches of
// up to 500, using all clients, resending the entries that PutRecords
// reports as failed (up to 10 times each batch).
func prefill(ctx context.Context, clients []*Client, stream string, n int64, size int) error {
	pf := putFlags{mode: "records", batch: 500, size: size, keys: 10000, keyPrefix: "prefill-"}
	keys := makeKeys(pf.keyPrefix, pf.keys)
	var left atomic.Int64
	left.Store(n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newPutWorker(cl, stream, pf, keys, uint64(1000+i))
			for ctx.Err() == nil {
				k := min(left.Add(-500)+500, 500)
				if k <= 0 {
					return
				}
				entries := w.entries[:k]
				for j := range entries {
					entries[j] = types.PutRecordsRequestEntry{Data: w.data(), PartitionKey: w.key()}
				}
				if err := putAll(ctx, cl, w.stream, entries); err != nil {
					errs[i] = err
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: prefill: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bench: prefill: %w", err)
	}
	return nil
}

// putAll puts entries, resending the failed ones with a short backoff.
func putAll(ctx context.Context, cl *Client, stream *string, entries []types.PutRecordsRequestEntry) error {
	for attempt := 0; ; attempt++ {
		out, err := cl.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: stream, Records: entries})
		if err != nil {
			return err
		}
		if aws.ToInt32(out.FailedRecordCount) == 0 {
			return nil
		}
		if len(out.Records) != len(entries) {
			return fmt.Errorf("putrecords answered %d results for %d records", len(out.Records), len(entries))
		}
		var again []types.PutRecordsRequestEntry
		var code, msg string
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				again = append(again, entries[i])
				code, msg = aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage)
			}
		}
		if attempt >= 10 {
			return fmt.Errorf("%d records still failing after %d attempts: %s: %s", len(again), attempt+1, code, msg)
		}
		entries = again
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(10<<min(attempt, 6)) * time.Millisecond):
		}
	}
}
