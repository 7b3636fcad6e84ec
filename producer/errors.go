package producer

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Sentinel errors. Results and Put wrap them; test with errors.Is.
var (
	// ErrClosed is returned by Put and its variants after Close was called,
	// and is the result of records that Close had to abandon because its
	// context ended before they were sent.
	ErrClosed = errors.New("producer: closed")
	// ErrBufferFull is returned by TryPut when MaxBufferedRecords or
	// MaxBufferedBytes is reached.
	ErrBufferFull = errors.New("producer: buffer full")
	// ErrRecordExpired is the result of a record that was not stored within
	// RecordTTL. The result's error wraps it together with the last error
	// the record met, if any.
	ErrRecordExpired = errors.New("producer: record expired")
	// ErrInvalidRecord is returned by Put for a record Kinesis would
	// reject: an empty partition key or one longer than 256 characters, or
	// an explicit hash key that is not a decimal integer in [0, 2^128-1].
	ErrInvalidRecord = errors.New("producer: invalid record")
	// ErrRecordTooLarge is returned by Put for a record whose data plus
	// partition key exceed Config.MaxRecordBytes.
	ErrRecordTooLarge = errors.New("producer: record too large")
)

// PutError is the error of a record that failed: the shard it was last sent
// to (empty if it was never sent), the number of PutRecords attempts that
// carried it, and the cause. Errors from Kinesis are the SDK's own types:
// match them with errors.As, e.g. *types.ProvisionedThroughputExceededException.
type PutError struct {
	ShardID  string
	Attempts int
	Err      error
}

// Error implements error.
func (e *PutError) Error() string {
	if e.ShardID == "" {
		return fmt.Sprintf("put record (%d attempts): %v", e.Attempts, e.Err)
	}
	return fmt.Sprintf("put record to %s (%d attempts): %v", e.ShardID, e.Attempts, e.Err)
}

// Unwrap returns the cause.
func (e *PutError) Unwrap() error { return e.Err }

// errWrongShard is the cause recorded for user records that are sent again
// because their aggregate landed on a shard whose hash range does not hold
// them all (a stale shard map).
var errWrongShard = errors.New("aggregated record landed on a shard that does not own all its user records")

// entryError turns the ErrorCode and ErrorMessage of a failed PutRecords
// entry into the SDK's error type for that code, so that callers can match
// it with errors.As as they would a PutRecord error.
func entryError(code, msg string) error {
	m := &msg
	switch code {
	case "ProvisionedThroughputExceededException":
		return &types.ProvisionedThroughputExceededException{Message: m}
	case "InternalFailure", "InternalFailureException":
		c := code
		return &types.InternalFailureException{Message: m, ErrorCodeOverride: &c}
	case "KMSThrottlingException":
		return &types.KMSThrottlingException{Message: m}
	case "KMSAccessDeniedException":
		return &types.KMSAccessDeniedException{Message: m}
	case "KMSDisabledException":
		return &types.KMSDisabledException{Message: m}
	case "KMSInvalidStateException":
		return &types.KMSInvalidStateException{Message: m}
	case "KMSNotFoundException":
		return &types.KMSNotFoundException{Message: m}
	case "KMSOptInRequired":
		return &types.KMSOptInRequired{Message: m}
	}
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultUnknown}
}

// retryable reports whether a record that failed with err may succeed if it
// is sent again. It is the one place the producer classifies errors: a
// retryable error puts the record back in front of its shard's queue (until
// RecordTTL), anything else fails it at once.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ProvisionedThroughputExceededException", // the shard's write limit: back off and retry
			"InternalFailure", "InternalFailureException", // per-entry or whole-call server failure
			"ServiceUnavailable", "ServiceUnavailableException",
			"KMSThrottlingException",            // KMS request rate: back off and retry
			"LimitExceededException",            // too many control-plane calls (ListShards): transient
			"ThrottlingException", "Throttling", // generic AWS throttling codes
			"RequestTimeout", "RequestTimeoutException",
			"ResourceNotFoundException", // stream deleted, or being re-created: the producer refreshes its map; bounded by RecordTTL
			"ResourceInUseException":    // stream UPDATING or CREATING: transient
			return true
		case "ValidationException", // malformed request: the same request fails again
			"InvalidArgumentException", // e.g. a bad explicit hash key or a record over the stream's size
			"AccessDeniedException", "UnrecognizedClientException", "MissingAuthenticationTokenException",
			"KMSAccessDeniedException", "KMSDisabledException", "KMSInvalidStateException",
			"KMSNotFoundException", "KMSOptInRequired", // the stream's key is unusable until someone fixes it
			"SerializationException", "UnknownOperationException":
			return false
		}
		// An unmodelled code: trust the HTTP status if there is one (5xx and
		// 429 are transient), else the fault (server faults are transient).
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
			s := re.HTTPStatusCode()
			return s >= 500 || s == 429
		}
		return ae.ErrorFault() == smithy.FaultServer
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		// An HTTP error without a Kinesis error body (a proxy, a load
		// balancer): 5xx and 429 are transient, 4xx are not.
		s := re.HTTPStatusCode()
		return s >= 500 || s == 429
	}
	if errors.Is(err, context.Canceled) {
		// Only Close cancels the producer's calls; it does not retry them.
		return false
	}
	// Everything else is the transport: connection refused or reset, a
	// timeout (context.DeadlineExceeded from RequestTimeout), a truncated
	// response. The call may or may not have reached Kinesis, so sending
	// again may store records twice, but never loses them.
	return true
}

// isThrottle reports whether err is Kinesis throttling a shard.
func isThrottle(err error) bool {
	var pte *types.ProvisionedThroughputExceededException
	return errors.As(err, &pte)
}

// isNotFound reports whether err says the stream does not exist.
func isNotFound(err error) bool {
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException"
}

// errorCode returns a short label for err, for metrics: the AWS error code,
// or "Expired", "Closed", "WrongShard", "Transport".
func errorCode(err error) string {
	switch {
	case errors.Is(err, ErrRecordExpired):
		return "Expired"
	case errors.Is(err, ErrClosed):
		return "Closed"
	case errors.Is(err, errWrongShard):
		return "WrongShard"
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return "Transport"
}
