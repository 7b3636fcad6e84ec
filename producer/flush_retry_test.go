package producer

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// TestFlushRetriesWithoutWaitingForMaxBufferedTime: a call that fails
// during Flush is retried after its back-off, not after MaxBufferedTime
// (an hour here), and Flush returns once the retry stored the record.
func TestFlushRetriesWithoutWaitingForMaxBufferedTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis(1)
		failed := false
		f.setHook(func(context.Context, *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error, bool) {
			if !failed {
				failed = true
				return nil, errors.New("injected: connection reset"), true
			}
			return nil, nil, false
		})
		p, err := New(f, Config{StreamName: "s", MaxBufferedTime: time.Hour, RecordTTL: 2 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := p.Close(context.Background()); err != nil {
				t.Error(err)
			}
		}()
		pd, err := p.Put(context.Background(), "k", []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		res, err := pd.Wait(context.Background())
		if err != nil || res.Attempts != 2 {
			t.Fatalf("result %+v, %v; want stored at the second attempt", res, err)
		}
		t.Logf("Flush took %v of fake time", time.Since(start))
		if took := time.Since(start); took > 10*time.Second { // the back-off is 100 ms to 5 s
			t.Fatalf("Flush took %v of fake time: the retry waited for MaxBufferedTime", took)
		}
	})
}
