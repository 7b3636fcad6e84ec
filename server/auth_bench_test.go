package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/engine/memengine"
	"github.com/shoalstream/shoal/internal/testutil/benchpair"
	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

// BenchmarkPutRecordsAuth measures PutRecords of 500 records of 100 B
// through the SDK over loopback (on the memory engine, so that the disk does
// not drown the difference) with request verification off and on: the cost
// of verifying a request (SigV4 over the body, the policy check, the audit
// decision) is the gap between the two. Run both in one invocation, e.g.
//
//	go test -run '^$' -bench BenchmarkPutRecordsAuth -benchtime 3s -count 5 ./server/
//
// The machine's other load drifts between the two runs; "paired" runs both
// servers at once and alternates rounds of calls between them, so that the
// drift falls on both alike, and reports the cost as a share of the time
// (verify-cost-%: the time of the verified calls over the others', minus 1).
func BenchmarkPutRecordsAuth(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("verify=%v", on), func(b *testing.B) {
			put := startPutAuth(b, on)
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := put(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*500)/time.Since(start).Seconds(), "records/s")
		})
	}
	b.Run("paired", func(b *testing.B) {
		off, on := startPutAuth(b, false), startPutAuth(b, true)
		benchpair.Report(b, benchpair.Time(b, off, on), "verify-cost-%", "off-us/call", "on-us/call")
	})
}

// startPutAuth starts a server with verification on or off and returns a
// call of PutRecords of 500 records of 100 B to it.
func startPutAuth(b *testing.B, verify bool) func() error {
	eng := memengine.New(memengine.Config{})
	b.Cleanup(func() { _ = eng.Close() })
	cfg := server.Config{Engine: eng, AccountID: acctA}
	if verify {
		cfg.AuthConfigFile = writeAuthConfig(b, b.TempDir(), admin, producerP)
	}
	srv := servertest.Start(b, cfg)
	ctx := context.Background()
	ad := servertest.Client(srv.Endpoint, asKey(admin))
	if _, err := ad.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(4)}); err != nil {
		b.Fatal(err)
	}
	c := servertest.Client(srv.Endpoint, asKey(producerP))
	in := &kinesis.PutRecordsInput{StreamName: aws.String("orders")}
	data := make([]byte, 100)
	for i := range 500 {
		in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("pk-%d", i)), Data: data})
	}
	return func() error {
		out, err := c.PutRecords(ctx, in)
		if err == nil && aws.ToInt32(out.FailedRecordCount) != 0 {
			err = fmt.Errorf("%d records refused", aws.ToInt32(out.FailedRecordCount))
		}
		return err
	}
}
