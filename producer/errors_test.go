package producer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestRetryable(t *testing.T) {
	op := func(err error) error {
		return &smithy.OperationError{ServiceID: "Kinesis", OperationName: "PutRecords", Err: err}
	}
	httpErr := func(status int, err error) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}
	}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"throttled entry", entryError("ProvisionedThroughputExceededException", ""), true},
		{"internal failure entry", entryError("InternalFailure", ""), true},
		{"KMS throttling entry", entryError("KMSThrottlingException", ""), true},
		{"KMS access denied entry", entryError("KMSAccessDeniedException", ""), false},
		{"unknown entry code", entryError("SomethingNew", ""), false},
		{"throttled call", op(httpErr(400, &types.ProvisionedThroughputExceededException{})), true},
		{"stream not found", op(httpErr(400, &types.ResourceNotFoundException{})), true},
		{"stream updating", op(httpErr(400, &types.ResourceInUseException{})), true},
		{"limit exceeded", op(httpErr(400, &types.LimitExceededException{})), true},
		{"validation", op(httpErr(400, &types.ValidationException{})), false},
		{"invalid argument", op(httpErr(400, &types.InvalidArgumentException{})), false},
		{"access denied", op(httpErr(400, &types.AccessDeniedException{})), false},
		{"internal failure call", op(httpErr(500, &types.InternalFailureException{})), true},
		{"unmodelled 503", op(httpErr(503, &smithy.GenericAPIError{Code: "Whatever"})), true},
		{"unmodelled 429", op(httpErr(429, &smithy.GenericAPIError{Code: "Whatever"})), true},
		{"unmodelled 400", op(httpErr(400, &smithy.GenericAPIError{Code: "Whatever"})), false},
		{"server fault without status", &smithy.GenericAPIError{Code: "X", Fault: smithy.FaultServer}, true},
		{"bare 502", op(httpErr(502, errors.New("bad gateway"))), true},
		{"bare 403", op(httpErr(403, errors.New("forbidden"))), false},
		{"connection refused", op(&smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}), true},
		{"connection reset", op(fmt.Errorf("read: %w", syscall.ECONNRESET)), true},
		{"truncated response", op(io.ErrUnexpectedEOF), true},
		{"request timeout", op(context.DeadlineExceeded), true},
		{"cancelled by Close", op(context.Canceled), false},
		{"nil", nil, false},
	}
	for _, tc := range cases {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("%s: retryable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestEntryErrorTypes(t *testing.T) {
	var pte *types.ProvisionedThroughputExceededException
	if err := entryError("ProvisionedThroughputExceededException", "slow down"); !errors.As(err, &pte) || *pte.Message != "slow down" {
		t.Errorf("throttle entry: %v", err)
	}
	var ife *types.InternalFailureException
	if err := entryError("InternalFailure", "oops"); !errors.As(err, &ife) || ife.ErrorCode() != "InternalFailure" {
		t.Errorf("internal failure entry: %v", err)
	}
	var ae smithy.APIError
	if err := entryError("Mystery", "m"); !errors.As(err, &ae) || ae.ErrorCode() != "Mystery" {
		t.Errorf("unknown entry: %v", err)
	}
	err := &PutError{ShardID: "shardId-000000000001", Attempts: 3, Err: fmt.Errorf("%w: %w", ErrRecordExpired, entryError("ProvisionedThroughputExceededException", "x"))}
	if !errors.Is(err, ErrRecordExpired) || !errors.As(err, &pte) || errorCode(err) != "Expired" {
		t.Errorf("wrapped expiry: %v", err)
	}
	if errorCode(entryError("InternalFailure", "")) != "InternalFailure" || errorCode(io.EOF) != "Transport" {
		t.Error("errorCode")
	}
}
