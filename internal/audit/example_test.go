package audit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/shoalstream/shoal/internal/audit"
	"github.com/shoalstream/shoal/internal/wire"
)

// Example logs a PutRecords call made with authentication off. The records'
// data and partition keys do not appear, only their count.
func Example() {
	var out bytes.Buffer // Open(path, …) writes to a file instead
	clock := func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }
	w := audit.New(&out, audit.Options{Now: clock})

	stream, key := "orders", "customer-42"
	in := &wire.PutRecordsInput{StreamRef: wire.StreamRef{StreamName: &stream}}
	for range 3 {
		in.Records = append(in.Records, wire.PutRecordsRequestEntry{Data: []byte("card=4111"), PartitionKey: &key})
	}

	rec := audit.NewRecord("PutRecords")
	rec.UserIdentity = audit.AnonymousIdentity()
	rec.AWSRegion, rec.SourceIPAddress, rec.UserAgent = "us-east-1", "127.0.0.1", "aws-sdk-go-v2/1.48.0"
	rec.RequestParameters = audit.RequestParameters(in)
	rec.RequestID, rec.EventID = "f00d", "4d7c3b5e-0000-4000-8000-000000000001"
	rec.RecipientAccountID = "000000000000"
	rec.Resources = []audit.Resource{{AccountID: "000000000000", Type: audit.ResourceTypeStream,
		ARN: "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}}
	w.Write(rec)

	if err := w.Close(); err != nil {
		fmt.Println(err)
	}
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, out.Bytes(), "", "  ")
	fmt.Print(pretty.String())
	// Output:
	// {
	//   "eventVersion": "1.11",
	//   "userIdentity": {
	//     "type": "AWSAccount",
	//     "principalId": "",
	//     "accountId": "ANONYMOUS_PRINCIPAL"
	//   },
	//   "eventTime": "2025-01-02T03:04:05Z",
	//   "eventSource": "kinesis.amazonaws.com",
	//   "eventName": "PutRecords",
	//   "awsRegion": "us-east-1",
	//   "sourceIPAddress": "127.0.0.1",
	//   "userAgent": "aws-sdk-go-v2/1.48.0",
	//   "requestParameters": {
	//     "recordsCount": 3,
	//     "streamName": "orders"
	//   },
	//   "responseElements": null,
	//   "requestID": "f00d",
	//   "eventID": "4d7c3b5e-0000-4000-8000-000000000001",
	//   "readOnly": false,
	//   "resources": [
	//     {
	//       "accountId": "000000000000",
	//       "type": "AWS::Kinesis::Stream",
	//       "ARN": "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
	//     }
	//   ],
	//   "eventType": "AwsApiCall",
	//   "managementEvent": false,
	//   "recipientAccountId": "000000000000",
	//   "eventCategory": "Data"
	// }
}

// ExampleRequestParameters shows the camelCase members CloudTrail uses,
// with absent (nil) members left out.
func ExampleRequestParameters() {
	stream, shard, typ := "GoodStream", "shardId-000000000000", "LATEST"
	p := audit.RequestParameters(&wire.GetShardIteratorInput{
		StreamRef: wire.StreamRef{StreamName: &stream}, ShardID: &shard, ShardIteratorType: &typ,
	})
	b, _ := json.Marshal(p)
	fmt.Println(string(b))
	// Output:
	// {"shardId":"shardId-000000000000","shardIteratorType":"LATEST","streamName":"GoodStream"}
}
