package producer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/aggregation"
	"github.com/shoalstream/shoal/internal/hashkey"
)

// fakeKinesis is an in-memory Kinesis for tests that need control over
// every answer (and for testing/synctest, which cannot reach a real
// server). Its shards split the key space evenly. PutRecords stores every
// entry unless hook says otherwise.
type fakeKinesis struct {
	mu     sync.Mutex
	shards []shardInfo
	seq    int
	calls  []fakeCall
	stored []types.PutRecordsRequestEntry // every stored entry, in order
	// hook, if set, may replace the answer to a PutRecords call; it runs
	// without mu held. Returning handled=false stores the entries.
	hook func(ctx context.Context, in *kinesis.PutRecordsInput) (out *kinesis.PutRecordsOutput, err error, handled bool)
	// listErr, if set, fails ListShards.
	listErr error
}

// fakeCall is one PutRecords call as the fake saw it.
type fakeCall struct {
	at      time.Time
	entries []types.PutRecordsRequestEntry
}

func newFakeKinesis(shards int) *fakeKinesis {
	return &fakeKinesis{shards: evenShards(shards, 0)}
}

func (f *fakeKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	out := &kinesis.ListShardsOutput{}
	for _, s := range f.shards {
		out.Shards = append(out.Shards, types.Shard{
			ShardId: aws.String(s.id),
			HashKeyRange: &types.HashKeyRange{
				StartingHashKey: aws.String(s.start.String()), EndingHashKey: aws.String(s.end.String()),
			},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("0")},
		})
	}
	return out, nil
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{at: time.Now(), entries: append([]types.PutRecordsRequestEntry(nil), in.Records...)})
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if out, err, handled := hook(ctx, in); handled {
			return out, err
		}
	}
	return f.store(in), nil
}

// store answers every entry with success on the shard that owns it.
func (f *fakeKinesis) store(in *kinesis.PutRecordsInput) *kinesis.PutRecordsOutput {
	out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
	for _, e := range in.Records {
		out.Records = append(out.Records, f.storeEntry(e))
	}
	return out
}

// storeEntry stores one entry on the shard that owns it.
func (f *fakeKinesis) storeEntry(e types.PutRecordsRequestEntry) types.PutRecordsResultEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := hashkey.FromPartitionKey(*e.PartitionKey)
	if e.ExplicitHashKey != nil {
		k, _ = hashkey.Parse(*e.ExplicitHashKey)
	}
	id := ""
	for _, s := range f.shards {
		if s.contains(k) {
			id = s.id
		}
	}
	f.seq++
	f.stored = append(f.stored, e)
	return types.PutRecordsResultEntry{ShardId: aws.String(id), SequenceNumber: aws.String(fmt.Sprintf("%039d", f.seq))}
}

// flaky fails each entry with InternalFailure with probability 1/every
// (deterministically, by a counter) and stores the others: the partial
// failures that can reorder records.
func (f *fakeKinesis) flaky(every int) func(context.Context, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error, bool) {
	var n int
	var mu sync.Mutex
	return func(_ context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error, bool) {
		out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
		for _, e := range in.Records {
			mu.Lock()
			n++
			fail := n%every == 0
			mu.Unlock()
			if fail {
				*out.FailedRecordCount++
				out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String("InternalFailure"), ErrorMessage: aws.String("injected")})
				continue
			}
			out.Records = append(out.Records, f.storeEntry(e))
		}
		return out, nil, true
	}
}

// storedUserRecords deaggregates everything stored, in order.
func (f *fakeKinesis) storedUserRecords() []readRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []readRecord
	for _, e := range f.stored {
		subs, _ := aggregation.Deaggregate(*e.PartitionKey, e.Data)
		for _, s := range subs {
			out = append(out, readRecord{PartitionKey: s.PartitionKey, Data: string(s.Data)})
		}
	}
	return out
}

func (f *fakeKinesis) setHook(h func(ctx context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error, bool)) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

func (f *fakeKinesis) callLog() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeCall(nil), f.calls...)
}

// failEntries answers every entry with the given error code.
func failEntries(code string) func(context.Context, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error, bool) {
	return func(_ context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error, bool) {
		out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(int32(len(in.Records)))}
		for range in.Records {
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("injected")})
		}
		return out, nil, true
	}
}

// blockUntil makes PutRecords wait until release is closed or its context
// ends, then store normally (or fail with the context's error).
func blockUntil(release <-chan struct{}) func(context.Context, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error, bool) {
	return func(ctx context.Context, in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error, bool) {
		select {
		case <-release:
			return nil, nil, false
		case <-ctx.Done():
			return nil, ctx.Err(), true
		}
	}
}
