package server

import (
	"errors"
	"fmt"
	"net/http"
)

// Fault says whose fault an error is, as smithy.ErrorFault does.
type Fault int

// Faults.
const (
	FaultClient Fault = iota
	FaultServer
)

// APIError is an error as Kinesis reports it on the wire: a code (the
// __type of the response body), an HTTP status and a message. Handlers return
// these; one function writes them.
type APIError struct {
	Code    string
	Status  int
	Fault   Fault
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// ErrorCode returns the AWS error code, as smithy.APIError does.
func (e *APIError) ErrorCode() string { return e.Code }

// ErrorMessage returns the message, as smithy.APIError does.
func (e *APIError) ErrorMessage() string { return e.Message }

// Is matches any APIError with the same code, so errors.Is(err,
// ErrResourceNotFound) holds for a copy that carries a message.
func (e *APIError) Is(target error) bool {
	t, ok := target.(*APIError)
	return ok && t.Code == e.Code
}

// With returns a copy of e with a formatted message.
func (e *APIError) With(format string, args ...any) *APIError {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

func clientErr(code string) *APIError {
	return &APIError{Code: code, Status: http.StatusBadRequest, Fault: FaultClient}
}

// The catalogue of errors shoal answers with. Every code is one the Kinesis
// model or the AWS JSON protocol defines, with the status AWS uses.
var (
	ErrResourceNotFound              = clientErr("ResourceNotFoundException")
	ErrResourceInUse                 = clientErr("ResourceInUseException")
	ErrInvalidArgument               = clientErr("InvalidArgumentException")
	ErrLimitExceeded                 = clientErr("LimitExceededException")
	ErrValidation                    = clientErr("ValidationException")
	ErrProvisionedThroughputExceeded = clientErr("ProvisionedThroughputExceededException")
	ErrExpiredIterator               = clientErr("ExpiredIteratorException")
	ErrExpiredNextToken              = clientErr("ExpiredNextTokenException")
	ErrDryRunOperation               = clientErr("DryRunOperationException")
	ErrAccessDenied                  = clientErr("AccessDeniedException")
	ErrSerialization                 = clientErr("SerializationException")
	ErrUnknownOperation              = clientErr("UnknownOperationException")
	ErrKMSNotFound                   = clientErr("KMSNotFoundException")
	ErrKMSDisabled                   = clientErr("KMSDisabledException")
	ErrKMSInvalidState               = clientErr("KMSInvalidStateException")
	ErrKMSAccessDenied               = clientErr("KMSAccessDeniedException")
	ErrInternalFailure               = &APIError{Code: "InternalFailure", Status: http.StatusInternalServerError, Fault: FaultServer}
)

// asAPIError maps any error to the APIError that goes on the wire. Errors
// that are not APIErrors become InternalFailure and their text stays in the
// log, not in the response.
func asAPIError(err error) (*APIError, bool) {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae, true
	}
	return ErrInternalFailure.With("Internal service failure."), false
}
