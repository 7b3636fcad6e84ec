package awscreds_test

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/internal/awscreds"
)

// Example builds a Kinesis client for a shoal server that signs with the
// credentials of the SDK's default chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE, the shared files...), or with the
// placeholder ones when there are none, which a server without
// --auth-config accepts.
func Example() {
	ctx := context.Background()
	creds, err := awscreds.Provider(ctx, "") // or a profile name, as a --profile flag gives
	if err != nil {
		log.Fatal(err) // e.g. AWS_PROFILE names a profile that does not exist
	}
	if awscreds.IsPlaceholder(creds) {
		fmt.Println("no AWS credentials found: signing with placeholder ones")
	}
	client := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:4567"),
		Credentials:  creds,
	})
	_ = client // pass it to producer.New, consumer.New or fanout.New
}
