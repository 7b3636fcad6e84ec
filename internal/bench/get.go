package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// getFlags are the flags of "bench get" besides the common ones.
type getFlags struct {
	limit   int
	prefill int64
	size    int
}

// maxCursorFailures is how many GetRecords calls in a row may fail on one
// shard before its reader gives that shard up.
const maxCursorFailures = 3

func runGet(ctx context.Context, args []string, out io.Writer) error {
	var c common
	var gf getFlags
	fs := newFlagSet("get", "shoal bench get [flags]",
		`Reads the stream back: every shard from TRIM_HORIZON, with GetRecords calls of
up to -limit records, until the shard has caught up (an empty page with
MillisBehindLatest 0, or a closed shard's end) or the run ends. Reports the
records/s and payload MB/s read, GetRecords calls/s, per-call latency and
errors. -prefill N first writes N records of -size bytes with PutRecords (not
measured) so that there is something to read.

Shards are split between the -clients readers (default: one per shard). With
fewer readers than shards, reader i reads shards i, i+clients, ... in turn.
With more readers than shards, reader i reads shard i mod shards: several
readers then each read the same shard in full, as independent consumer
applications would, and every copy counts in the figures.
`, out)
	c.register(fs, 0, "concurrent readers, each with its own connections (0: one per shard)", 0)
	fs.IntVar(&gf.limit, "limit", 10000, "records per GetRecords call (Limit)")
	fs.Int64Var(&gf.prefill, "prefill", 0, "records to put first, with PutRecords, so that there is something to read")
	fs.IntVar(&gf.size, "size", 100, "bytes of random payload per prefilled record")
	if done, err := parse(fs, args); done {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	switch {
	case gf.limit < 1:
		return fmt.Errorf("bench: -limit must be >= 1, got %d", gf.limit)
	case gf.prefill < 0:
		return fmt.Errorf("bench: -prefill must be >= 0, got %d", gf.prefill)
	case gf.size < 0:
		return fmt.Errorf("bench: -size must be >= 0, got %d", gf.size)
	}
	if err := c.loadCredentials(ctx); err != nil {
		return err
	}
	setup := c.newClient(endpoints(c.endpoint)[0], c.retries)
	open, err := ensureStream(ctx, setup, &c, out)
	if err != nil {
		return err
	}
	shards, err := listShards(ctx, setup, c.stream)
	if err != nil {
		return err
	}
	if len(shards) == 0 {
		return fmt.Errorf("bench: stream %s has no shards", c.stream)
	}
	n := c.clients
	if n == 0 {
		n = len(shards)
	}
	clients := newClients(&c, n)
	if gf.prefill > 0 {
		t0 := time.Now()
		if err := prefill(ctx, clients, c.stream, gf.prefill, gf.size); err != nil {
			return err
		}
		d := time.Since(t0)
		_, _ = fmt.Fprintf(out, "prefill: %d records of %d B in %.2fs (%.1f records/s)\n",
			gf.prefill, gf.size, d.Seconds(), float64(gf.prefill)/d.Seconds())
	}
	readers := make([]*reader, n)
	workers := make([]worker, n)
	for i := range readers {
		readers[i] = &reader{c: clients[i], limit: aws.Int32(int32(min(gf.limit, 1<<30)))}
		workers[i] = readers[i]
	}
	if n <= len(shards) {
		for j, id := range shards {
			readers[j%n].cursors = append(readers[j%n].cursors, &cursor{shard: id})
		}
	} else {
		for i, r := range readers {
			r.cursors = []*cursor{{shard: shards[i%len(shards)]}}
		}
	}
	for _, r := range readers {
		if err := r.start(ctx, c.stream); err != nil {
			return err
		}
	}
	limit := fmt.Sprintf("duration %v", c.duration)
	if c.requests > 0 {
		limit = fmt.Sprintf("%d requests", c.requests)
	}
	_, _ = fmt.Fprintf(out, "bench get: %s, %s, %d shards listed, %d readers, limit %d, %s, warmup %v\n",
		c.endpoint, streamDesc(&c, open), len(shards), n, gf.limit, limit, c.warmup)
	o := drive(ctx, c.plan(), workers, clients)
	res := newResult(&o)
	res.Op, res.Mode, res.Endpoint, res.Stream, res.Shards, res.Clients = "get", "read", c.endpoint, c.stream, len(shards), n
	res.Prefilled = gf.prefill
	for _, r := range readers {
		for _, cu := range r.cursors {
			res.Cursors++
			if cu.caughtUp {
				res.CaughtUp++
			}
		}
	}
	if err := res.print(out, &o, "GetRecords", c.json); err != nil {
		return err
	}
	if o.interrupted {
		return fmt.Errorf("bench: get interrupted: %w", ctx.Err())
	}
	return nil
}

// cursor is one reader's pass over one shard.
type cursor struct {
	shard    string
	iter     *string
	fails    int
	done     bool // nothing more to read (caught up or given up)
	caughtUp bool
}

// reader reads its cursors in turn, one GetRecords call at a time.
type reader struct {
	c       *Client
	limit   *int32
	cursors []*cursor
	next    int
	left    int // cursors not done
}

// start gets a TRIM_HORIZON iterator for every cursor.
func (r *reader) start(ctx context.Context, stream string) error {
	for _, cu := range r.cursors {
		out, err := r.c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName:        aws.String(stream),
			ShardId:           aws.String(cu.shard),
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return fmt.Errorf("bench: get shard iterator for %s: %w", cu.shard, err)
		}
		if out.ShardIterator == nil {
			return fmt.Errorf("bench: get shard iterator for %s: %w", cu.shard, errors.New("no iterator returned"))
		}
		cu.iter = out.ShardIterator
	}
	r.left = len(r.cursors)
	return nil
}

func (r *reader) finished() bool { return r.left == 0 }

func (r *reader) call(ctx context.Context) (callResult, error) {
	var cu *cursor
	for range r.cursors {
		cu = r.cursors[r.next]
		r.next = (r.next + 1) % len(r.cursors)
		if !cu.done {
			break
		}
	}
	if cu == nil || cu.done {
		return callResult{}, errors.New("no shard left to read")
	}
	out, err := r.c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: cu.iter, Limit: r.limit})
	if err != nil {
		cu.fails++
		if cu.fails >= maxCursorFailures && ctx.Err() == nil {
			r.finish(cu, false)
		}
		return callResult{}, fmt.Errorf("getrecords on %s: %w", cu.shard, err)
	}
	cu.fails = 0
	res := callResult{records: int64(len(out.Records))}
	for _, rec := range out.Records {
		res.bytes += int64(len(rec.Data))
	}
	switch {
	case out.NextShardIterator == nil:
		r.finish(cu, true) // closed shard read to its end
	case len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0:
		r.finish(cu, true)
	default:
		cu.iter = out.NextShardIterator
	}
	return res, nil
}

func (r *reader) finish(cu *cursor, caughtUp bool) {
	cu.done, cu.caughtUp = true, caughtUp
	r.left--
}
