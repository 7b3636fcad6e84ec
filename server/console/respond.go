package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"
)

// Console-made error codes (API.md, "Conventions").
const (
	codeSignedOut     = "ConsoleSignedOut"
	codeCSRF          = "ConsoleCSRF"
	codeBadRequest    = "ConsoleBadRequest"
	codeNotConfigured = "ConsoleNotConfigured"
	codeNotFound      = "ConsoleNotFound"
	codeBadMethod     = "ConsoleMethodNotAllowed"
	codeInternal      = "InternalFailure"
)

// contentSecurityPolicy is sent with every answer: the page loads only its
// own embedded files and talks only to the console.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// consoleError is an error the console answers with its own status and
// code.
type consoleError struct {
	status  int
	code    string
	message string
}

func (e *consoleError) Error() string { return e.code + ": " + e.message }

func badRequest(format string, args ...any) error {
	return &consoleError{status: http.StatusBadRequest, code: codeBadRequest, message: fmt.Sprintf(format, args...)}
}

func notConfigured(message string) error {
	return &consoleError{status: http.StatusNotFound, code: codeNotConfigured, message: message}
}

// errorBody is the body of every error answer.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// describe returns the status, code and message to answer err with: a
// console error's own; the Kinesis server's status, code and message,
// verbatim, for an error of an SDK call; InternalFailure (500) for
// anything else, whose text may not be shown (it is logged instead).
func describe(err error) (int, errorBody, bool) {
	var ce *consoleError
	if errors.As(err, &ce) {
		return ce.status, errorBody{ce.code, ce.message}, false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		status := http.StatusBadRequest
		if ae.ErrorFault() == smithy.FaultServer {
			status = http.StatusInternalServerError
		}
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
			status = re.HTTPStatusCode()
		}
		return status, errorBody{ae.ErrorCode(), ae.ErrorMessage()}, false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, errorBody{"ServiceUnavailable", "The request was cancelled before the server answered."}, false
	}
	return http.StatusInternalServerError, errorBody{codeInternal, "The console could not complete the request; the server's log says why."}, true
}

// apiError is the body of an error as a value (for the entries of a list
// that failed one by one).
func apiError(err error) *errorBody {
	_, b, _ := describe(err)
	return &b
}

// securityHeaders sets the headers every answer carries.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{codeInternal, "The answer could not be encoded."})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers err (see describe), logging what may not be shown.
func (c *Console) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body, internal := describe(err)
	if internal {
		c.log.Warn("console request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	}
	writeJSON(w, status, body)
}

// maxBody bounds a request body: PutRecord's data (up to 10 MiB with
// UpdateMaxRecordSize) in base64, and the JSON around it.
const maxBody = 16 << 20

// decodeBody decodes the request's JSON body into v, refusing unknown
// members; an empty body is an empty object.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return badRequest("The request body exceeds %d bytes.", maxBody)
		}
		return badRequest("The request body could not be read.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("The request body is not the JSON expected: %v", err)
	}
	if dec.More() {
		return badRequest("The request body holds more than one JSON value.")
	}
	return nil
}

// ts formats a time as the API does: RFC 3339 with milliseconds, UTC.
func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// tsPtr formats a time, or gives nil for a nil or zero one.
func tsPtr(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := ts(*t)
	return &s
}
