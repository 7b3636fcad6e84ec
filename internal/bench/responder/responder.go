// Package responder is the yardstick of shoal's load tests: a minimal
// Kinesis Data Streams endpoint that speaks AWS JSON 1.1 just enough for
// "shoal bench put" and "shoal bench get" (CreateStream,
// DescribeStreamSummary, ListShards, PutRecords, PutRecord,
// GetShardIterator, GetRecords), decodes every request with shoal's own
// codec (internal/wire, the PutRecords fast path included), answers
// success with plausible shard ids and sequence numbers, and stores no
// record. It checks no signature.
//
// What a load test gets from it is the cost of the client, HTTP on loopback
// and the JSON codec alone: on a machine where the load tool and the server
// share the CPU, shoal's figures divided by the responder's say how much of
// the machine the server itself spends beyond that floor
// (scripts/bench-compare.sh prints the ratio). Run it with
// "shoal bench responder --addr 127.0.0.1:4612".
//
// GetRecords reads back, per shard, as many records as were put to it, each
// of the mean size put (its data zero bytes, its partition key "pk"): it
// keeps two counters per shard and nothing else.
package responder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/seqnum"
	"github.com/shoalstream/shoal/internal/wire"
)

const (
	targetPrefix  = "Kinesis_20131202."
	contentType   = "application/x-amz-json-1.1"
	maxBody       = 16 << 20
	defaultLimit  = 10000
	maxShardCount = 1 << 16
)

// Responder is an http.Handler answering Kinesis calls. Its zero value is
// not usable: call New.
type Responder struct {
	defaultShards int
	created       time.Time
	mu            sync.RWMutex
	streams       map[string]*stream
	offset        atomic.Uint64 // batch counter: the Offset of sequence numbers
}

// stream is what the Responder keeps of a stream: its shards' counters.
type stream struct {
	name   string
	shards []shard
}

type shard struct {
	id      string
	records atomic.Int64
	bytes   atomic.Int64
}

// New returns a Responder. A stream that was not created with CreateStream
// exists all the same, with defaultShards shards (at least 1).
func New(defaultShards int) *Responder {
	if defaultShards < 1 {
		defaultShards = 1
	}
	return &Responder{defaultShards: defaultShards, created: time.Now(), streams: map[string]*stream{}}
}

// lookup returns the stream of that name, creating it with shards shards
// (0: the default) if it is new.
func (r *Responder) lookup(name string, shards int) *stream {
	r.mu.RLock()
	st := r.streams[name]
	r.mu.RUnlock()
	if st != nil {
		return st
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st = r.streams[name]; st != nil {
		return st
	}
	if shards < 1 {
		shards = r.defaultShards
	}
	st = &stream{name: name, shards: make([]shard, shards)}
	for i := range st.shards {
		st.shards[i].id = shardID(i)
	}
	r.streams[name] = st
	return st
}

func shardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// streamName picks the stream a request names, by name or by ARN.
func streamName(ref wire.StreamRef) string {
	switch {
	case ref.StreamName != nil:
		return *ref.StreamName
	case ref.StreamARN != nil:
		_, name, _ := strings.Cut(*ref.StreamARN, ":stream/")
		return name
	}
	return ""
}

// shardOf maps a hash key to one of n equal ranges, as CreateStream splits
// the key space (hashkey.SplitEvenly) give or take the last range's
// remainder.
func shardOf(k hashkey.Key, n int) int {
	hi, _ := bits.Mul64(k.Hi, uint64(n))
	return int(hi)
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// apiError is an error answer.
type apiError struct {
	code, msg string
}

func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	in := bufPool.Get().(*bytes.Buffer)
	in.Reset()
	defer bufPool.Put(in)
	out := bufPool.Get().(*bytes.Buffer)
	out.Reset()
	defer bufPool.Put(out)

	op, ok := strings.CutPrefix(req.Header.Get("X-Amz-Target"), targetPrefix)
	if _, err := in.ReadFrom(io.LimitReader(req.Body, maxBody)); err != nil {
		writeError(w, out, apiError{"SerializationException", "Unable to read the request body"})
		return
	}
	if !ok || req.Method != http.MethodPost {
		writeError(w, out, apiError{"UnknownOperationException", "Unknown operation"})
		return
	}
	var aerr *apiError
	switch op {
	case "PutRecords":
		aerr = r.putRecords(in.Bytes(), out)
	case "PutRecord":
		aerr = r.putRecord(in.Bytes(), out)
	case "GetRecords":
		aerr = r.getRecords(in.Bytes(), out)
	case "GetShardIterator":
		aerr = r.getShardIterator(in.Bytes(), out)
	case "DescribeStreamSummary":
		aerr = r.describeStreamSummary(in.Bytes(), out)
	case "ListShards":
		aerr = r.listShards(in.Bytes(), out)
	case "CreateStream":
		aerr = r.createStream(in.Bytes(), out)
	default:
		aerr = &apiError{"UnknownOperationException", "The responder does not serve " + op}
	}
	if aerr != nil {
		out.Reset()
		writeError(w, out, *aerr)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(out.Len()))
	_, _ = w.Write(out.Bytes())
}

func writeError(w http.ResponseWriter, buf *bytes.Buffer, e apiError) {
	_ = json.MarshalWrite(buf, wire.ErrorBody{Type: e.code, Message: e.msg})
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Amzn-ErrorType", e.code)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(buf.Bytes())
}

func decode(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{"SerializationException", err.Error()}
	}
	return nil
}

func encode(out *bytes.Buffer, v any) *apiError {
	if err := json.MarshalWrite(out, v); err != nil {
		return &apiError{"InternalFailure", err.Error()}
	}
	return nil
}

func invalid(msg string) *apiError { return &apiError{"InvalidArgumentException", msg} }

// route returns the shard index of a record.
func route(st *stream, pk, ehk *string) (int, *apiError) {
	var k hashkey.Key
	switch {
	case ehk != nil:
		var err error
		if k, err = hashkey.Parse(*ehk); err != nil {
			return 0, invalid("Invalid ExplicitHashKey")
		}
	case pk != nil:
		k = hashkey.FromPartitionKey(*pk)
	default:
		return 0, invalid("PartitionKey is required")
	}
	return shardOf(k, len(st.shards)), nil
}

func (r *Responder) putRecords(body []byte, out *bytes.Buffer) *apiError {
	var in wire.PutRecordsInput
	if !wire.DecodePutRecordsJSON(body, &in) {
		in = wire.PutRecordsInput{}
		if e := decode(body, &in); e != nil {
			return e
		}
	}
	if len(in.Records) == 0 {
		return invalid("Records must not be empty")
	}
	st := r.lookup(streamName(in.StreamRef), 0)
	off := r.offset.Add(1)
	res := wire.PutRecordsOutput{Records: make([]wire.PutRecordsResultEntry, len(in.Records))}
	for i := range in.Records {
		rec := &in.Records[i]
		s, e := route(st, rec.PartitionKey, rec.ExplicitHashKey)
		if e != nil {
			return e
		}
		sh := &st.shards[s]
		sh.records.Add(1)
		sh.bytes.Add(int64(len(rec.Data)))
		res.Records[i] = wire.PutRecordsResultEntry{
			ShardID:        sh.id,
			SequenceNumber: seqnum.Number{Shard: uint32(s), Offset: off % seqnum.MaxOffset, Index: uint16(i)}.String(),
		}
	}
	b, ok := wire.AppendPutRecordsOutputJSON(out.AvailableBuffer(), &res)
	if !ok {
		return encode(out, &res)
	}
	_, _ = out.Write(b)
	return nil
}

func (r *Responder) putRecord(body []byte, out *bytes.Buffer) *apiError {
	var in wire.PutRecordInput
	if e := decode(body, &in); e != nil {
		return e
	}
	st := r.lookup(streamName(in.StreamRef), 0)
	s, e := route(st, in.PartitionKey, in.ExplicitHashKey)
	if e != nil {
		return e
	}
	sh := &st.shards[s]
	sh.records.Add(1)
	sh.bytes.Add(int64(len(in.Data)))
	off := r.offset.Add(1)
	return encode(out, &wire.PutRecordOutput{
		ShardID:        sh.id,
		SequenceNumber: seqnum.Number{Shard: uint32(s), Offset: off % seqnum.MaxOffset}.String(),
	})
}

func (r *Responder) createStream(body []byte, out *bytes.Buffer) *apiError {
	var in wire.CreateStreamInput
	if e := decode(body, &in); e != nil {
		return e
	}
	if in.StreamName == nil || *in.StreamName == "" {
		return invalid("StreamName is required")
	}
	n := 0
	if in.ShardCount != nil {
		n = int(*in.ShardCount)
	}
	if n > maxShardCount {
		return invalid("ShardCount too large")
	}
	r.lookup(*in.StreamName, n)
	out.WriteString("{}")
	return nil
}

func (r *Responder) describeStreamSummary(body []byte, out *bytes.Buffer) *apiError {
	var in wire.DescribeStreamSummaryInput
	if e := decode(body, &in); e != nil {
		return e
	}
	st := r.lookup(streamName(in.StreamRef), 0)
	return encode(out, &wire.DescribeStreamSummaryOutput{StreamDescriptionSummary: wire.StreamDescriptionSummary{
		StreamName:              st.name,
		StreamARN:               "arn:aws:kinesis:us-east-1:000000000000:stream/" + st.name,
		StreamStatus:            "ACTIVE",
		StreamModeDetails:       &wire.StreamModeDetails{StreamMode: "PROVISIONED"},
		RetentionPeriodHours:    24,
		StreamCreationTimestamp: wire.TimestampOf(r.created),
		EnhancedMonitoring:      []wire.EnhancedMetrics{{ShardLevelMetrics: []string{}}},
		EncryptionType:          "NONE",
		OpenShardCount:          int32(len(st.shards)),
		MaxRecordSizeInKiB:      1024,
	}})
}

func (r *Responder) listShards(body []byte, out *bytes.Buffer) *apiError {
	var in wire.ListShardsInput
	if e := decode(body, &in); e != nil {
		return e
	}
	st := r.lookup(streamName(in.StreamRef), 0)
	starts, ends := hashkey.SplitEvenly(len(st.shards))
	res := wire.ListShardsOutput{Shards: make([]wire.Shard, len(st.shards))}
	for i := range st.shards {
		res.Shards[i] = wire.Shard{
			ShardID:             st.shards[i].id,
			HashKeyRange:        wire.HashKeyRange{StartingHashKey: starts[i].String(), EndingHashKey: ends[i].String()},
			SequenceNumberRange: wire.SequenceNumberRange{StartingSequenceNumber: seqnum.Number{Shard: uint32(i)}.String()},
		}
	}
	return encode(out, &res)
}

// An iterator is "position/shard index/stream name", unencrypted.
func iterator(pos int64, shard int, stream string) string {
	return strconv.FormatInt(pos, 10) + "/" + strconv.Itoa(shard) + "/" + stream
}

func (r *Responder) parseIterator(it string) (st *stream, shard int, pos int64, ok bool) {
	p, rest, ok1 := strings.Cut(it, "/")
	s, name, ok2 := strings.Cut(rest, "/")
	pos, err1 := strconv.ParseInt(p, 10, 64)
	shard, err2 := strconv.Atoi(s)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || pos < 0 {
		return nil, 0, 0, false
	}
	st = r.lookup(name, 0)
	if shard < 0 || shard >= len(st.shards) {
		return nil, 0, 0, false
	}
	return st, shard, pos, true
}

func (r *Responder) getShardIterator(body []byte, out *bytes.Buffer) *apiError {
	var in wire.GetShardIteratorInput
	if e := decode(body, &in); e != nil {
		return e
	}
	st := r.lookup(streamName(in.StreamRef), 0)
	shard := -1
	if in.ShardID != nil {
		for i := range st.shards {
			if st.shards[i].id == *in.ShardID {
				shard = i
			}
		}
	}
	if shard < 0 {
		return &apiError{"ResourceNotFoundException", "Shard not found"}
	}
	var pos int64 // TRIM_HORIZON and the rest; LATEST starts at the end
	if in.ShardIteratorType != nil && *in.ShardIteratorType == "LATEST" {
		pos = st.shards[shard].records.Load()
	}
	return encode(out, &wire.GetShardIteratorOutput{ShardIterator: iterator(pos, shard, st.name)})
}

// zeros backs the Data of the records GetRecords makes up.
var zeros = make([]byte, 1<<20)

func (r *Responder) getRecords(body []byte, out *bytes.Buffer) *apiError {
	var in wire.GetRecordsInput
	if e := decode(body, &in); e != nil {
		return e
	}
	if in.ShardIterator == nil {
		return invalid("ShardIterator is required")
	}
	st, s, pos, ok := r.parseIterator(*in.ShardIterator)
	if !ok {
		return invalid("Invalid ShardIterator")
	}
	limit := int64(defaultLimit)
	if in.Limit != nil && *in.Limit > 0 && int64(*in.Limit) < limit {
		limit = int64(*in.Limit)
	}
	sh := &st.shards[s]
	total, size := sh.records.Load(), int64(0)
	if total > 0 {
		size = min(sh.bytes.Load()/total, int64(len(zeros)))
	}
	n := max(0, min(limit, total-pos))
	res := wire.GetRecordsOutput{Records: make([]wire.Record, n)}
	now := wire.TimestampOf(time.Now())
	for i := range res.Records {
		res.Records[i] = wire.Record{
			SequenceNumber:              seqnum.Number{Shard: uint32(s), Offset: uint64(pos) + uint64(i)}.String(),
			ApproximateArrivalTimestamp: now,
			Data:                        zeros[:size],
			PartitionKey:                "pk",
		}
	}
	next := iterator(pos+n, s, st.name)
	res.NextShardIterator = &next
	if pos+n < total {
		res.MillisBehindLatest = 1
	}
	return encode(out, &res)
}

// Serve answers on addr until ctx ends; it is what "shoal bench responder"
// runs. ready, if not nil, is called with the bound address.
func Serve(ctx context.Context, addr string, defaultShards int, ready func(addr string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: New(defaultShards), ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		_ = srv.Close()
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
