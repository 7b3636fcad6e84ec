package sigv4_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/shoalstream/shoal/internal/sigv4"
)

// Example verifies a request signed by aws-sdk-go-v2, then the same request
// with its body changed and with the server's clock 10 minutes ahead.
func Example() {
	signedAt := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := signedAt.Add(2 * time.Second)
	v := &sigv4.Verifier{
		Region: "us-east-1",
		Now:    func() time.Time { return now },
		Lookup: func(id string) (sigv4.Key, bool) {
			if id != "AKIDEXAMPLE" {
				return sigv4.Key{}, false
			}
			return sigv4.Key{AccessKeyID: id, SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}, true
		},
	}

	// The client side: what the Kinesis client does for ListStreams.
	body := []byte(`{"Limit":10}`)
	req := httptest.NewRequest(http.MethodPost, "https://kinesis.us-east-1.amazonaws.com/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hexSHA(body), "kinesis", "us-east-1", signedAt); err != nil {
		fmt.Println(err)
		return
	}

	// The server side: the handler has read the body, then verifies.
	res, err := v.Verify(req, body)
	fmt.Println(res.AccessKeyID, res.SignedAt.Format(time.RFC3339), err)

	_, err = v.Verify(req, []byte(`{"Limit":1000}`))
	var e *sigv4.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code)
	}

	now = signedAt.Add(10 * time.Minute)
	_, err = v.Verify(req, body)
	fmt.Println(err)
	// Output:
	// AKIDEXAMPLE 2026-03-01T12:00:00Z <nil>
	// InvalidSignatureException
	// InvalidSignatureException: Signature expired: 20260301T120000Z is now earlier than 20260301T120500Z (20260301T121000Z - 5 min.)
}
