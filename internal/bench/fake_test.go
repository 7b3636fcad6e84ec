package bench

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKinesis is an in-memory Kinesis endpoint (JSON 1.1) with just the
// operations the tool uses, and knobs to inject failures.
type fakeKinesis struct {
	mu      sync.Mutex
	streams map[string]*fakeStream
	calls   map[string]int      // per operation
	conns   map[string]struct{} // remote addresses of data calls
	seq     int64

	creatingDescribes int // a new stream answers CREATING to this many describes
	failFirstPuts     int // the first N PutRecords/PutRecord calls answer 500
	failEveryRecord   int // PutRecords rejects every Nth entry of a call (N > 0)
	stored            int64
	storedBytes       int64
}

type fakeStream struct {
	describes int
	shards    [][]fakeRecord
}

type fakeRecord struct {
	Seq  string
	Key  string
	Data []byte
	At   time.Time
}

func newFake(t *testing.T) (*fakeKinesis, string) {
	t.Helper()
	f := &fakeKinesis{
		streams: map[string]*fakeStream{},
		calls:   map[string]int{},
		conns:   map[string]struct{}{},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeKinesis) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeKinesis) storedRecords() (int64, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stored, f.storedBytes
}

func (f *fakeKinesis) shardSizes(stream string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n []int
	if s := f.streams[stream]; s != nil {
		for _, sh := range s.shards {
			n = append(n, len(sh))
		}
	}
	return n
}

func (f *fakeKinesis) connCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

// shardFor maps a partition key to a shard like Kinesis does: MD5 of the key
// as a 128-bit number, with the hash space split evenly (top 64 bits here).
func shardFor(key string, n int) int {
	sum := md5.Sum([]byte(key))
	hi, _ := bits.Mul64(binary.BigEndian.Uint64(sum[:8]), uint64(n))
	return int(hi)
}

func (f *fakeKinesis) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "Kinesis_20131202.")
	if r.Method != http.MethodPost || !ok {
		writeErr(w, 400, "UnknownOperationException", "bad target "+target)
		return
	}
	var in struct {
		StreamName        string
		ShardCount        int
		ShardId           string
		ShardIterator     string
		ShardIteratorType string
		Limit             int
		Data              []byte
		PartitionKey      string
		Records           []struct {
			Data         []byte
			PartitionKey string
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeErr(w, 400, "SerializationException", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if op == "PutRecords" || op == "PutRecord" || op == "GetRecords" {
		f.conns[r.RemoteAddr] = struct{}{}
	}
	if op == "GetRecords" {
		parts := strings.Split(in.ShardIterator, "|")
		if len(parts) == 3 {
			in.StreamName = parts[0]
		}
	}
	s := f.streams[in.StreamName]
	if op != "CreateStream" && s == nil {
		writeErr(w, 400, "ResourceNotFoundException", "stream "+in.StreamName+" not found")
		return
	}
	switch op {
	case "CreateStream":
		if s != nil {
			writeErr(w, 400, "ResourceInUseException", "stream exists")
			return
		}
		f.streams[in.StreamName] = &fakeStream{shards: make([][]fakeRecord, in.ShardCount)}
		writeJSON(w, struct{}{})
	case "DescribeStreamSummary":
		s.describes++
		status := "ACTIVE"
		if s.describes <= f.creatingDescribes {
			status = "CREATING"
		}
		writeJSON(w, map[string]any{"StreamDescriptionSummary": map[string]any{
			"StreamName": in.StreamName, "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/" + in.StreamName,
			"StreamStatus": status, "OpenShardCount": len(s.shards), "RetentionPeriodHours": 24,
			"StreamCreationTimestamp": 1.7e9, "EnhancedMonitoring": []any{}, "EncryptionType": "NONE",
			"ConsumerCount": 0,
		}})
	case "ListShards":
		var shards []map[string]any
		for i := range s.shards {
			shards = append(shards, map[string]any{
				"ShardId":             fmt.Sprintf("shardId-%012d", i),
				"HashKeyRange":        map[string]string{"StartingHashKey": "0", "EndingHashKey": "1"},
				"SequenceNumberRange": map[string]string{"StartingSequenceNumber": "0"},
			})
		}
		writeJSON(w, map[string]any{"Shards": shards})
	case "PutRecord", "PutRecords":
		if f.failFirstPuts > 0 {
			f.failFirstPuts--
			writeErr(w, 500, "InternalFailure", "injected failure")
			return
		}
		if op == "PutRecord" {
			sh, seq := f.store(s, in.PartitionKey, in.Data)
			writeJSON(w, map[string]any{"ShardId": fmt.Sprintf("shardId-%012d", sh), "SequenceNumber": seq})
			return
		}
		failed := 0
		results := make([]map[string]any, 0, len(in.Records))
		for i, rec := range in.Records {
			if f.failEveryRecord > 0 && (i+1)%f.failEveryRecord == 0 {
				failed++
				results = append(results, map[string]any{
					"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "injected"})
				continue
			}
			sh, seq := f.store(s, rec.PartitionKey, rec.Data)
			results = append(results, map[string]any{"ShardId": fmt.Sprintf("shardId-%012d", sh), "SequenceNumber": seq})
		}
		writeJSON(w, map[string]any{"FailedRecordCount": failed, "Records": results, "EncryptionType": "NONE"})
	case "GetShardIterator":
		i, err := strconv.Atoi(strings.TrimPrefix(in.ShardId, "shardId-"))
		if err != nil || i < 0 || i >= len(s.shards) || in.ShardIteratorType != "TRIM_HORIZON" {
			writeErr(w, 400, "InvalidArgumentException", "bad shard or iterator type")
			return
		}
		writeJSON(w, map[string]any{"ShardIterator": fmt.Sprintf("%s|%d|0", in.StreamName, i)})
	case "GetRecords":
		parts := strings.Split(in.ShardIterator, "|")
		i, err1 := strconv.Atoi(parts[1])
		pos, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil || i < 0 || i >= len(s.shards) {
			writeErr(w, 400, "InvalidArgumentException", "bad iterator")
			return
		}
		limit := in.Limit
		if limit <= 0 {
			limit = 10000
		}
		sh := s.shards[i]
		end := min(pos+limit, len(sh))
		recs := []map[string]any{}
		for _, rec := range sh[pos:end] {
			recs = append(recs, map[string]any{
				"SequenceNumber": rec.Seq, "PartitionKey": rec.Key, "Data": rec.Data,
				"ApproximateArrivalTimestamp": float64(rec.At.UnixMilli()) / 1000,
			})
		}
		behind := 0
		if end < len(sh) {
			behind = 1000
		}
		writeJSON(w, map[string]any{
			"Records": recs, "MillisBehindLatest": behind,
			"NextShardIterator": fmt.Sprintf("%s|%d|%d", parts[0], i, end),
		})
	default:
		writeErr(w, 400, "UnknownOperationException", op)
	}
}

// store appends a record; f.mu is held.
func (f *fakeKinesis) store(s *fakeStream, key string, data []byte) (int, string) {
	f.seq++
	seq := fmt.Sprintf("%056d", f.seq)
	i := shardFor(key, len(s.shards))
	s.shards[i] = append(s.shards[i], fakeRecord{Seq: seq, Key: key, Data: data, At: time.Now()})
	f.stored++
	f.storedBytes += int64(len(data))
	return i, seq
}
