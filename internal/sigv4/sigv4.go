package sigv4

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Error codes, as Kinesis spells them. Every authentication failure is HTTP 400.
const (
	CodeMissingToken       = "MissingAuthenticationTokenException"
	CodeIncomplete         = "IncompleteSignatureException"
	CodeInvalidSignature   = "InvalidSignatureException"
	CodeUnrecognizedClient = "UnrecognizedClientException"
)

// Algorithm is the one signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// Messages sent with the errors. The first five are Kinesis's (or AWS's)
// words; the payload ones are shoal's, as Kinesis's own are unknown.
const (
	msgMissingToken      = "Missing Authentication Token"
	msgBoth              = "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
	msgInvalidToken      = "The security token included in the request is invalid."
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgHostUnsigned     = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
	msgPayloadMismatch  = "The provided 'x-amz-content-sha256' header does not match what was computed."
	msgPayloadMalformed = "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value."
	msgUnsignedOverHTTP = "x-amz-content-sha256 'UNSIGNED-PAYLOAD' is accepted only over HTTPS; over plain HTTP " +
		"sign the payload (send no x-amz-content-sha256, or the hex SHA-256 of the body)."
	msgStreaming = "x-amz-content-sha256 '%s' is not supported: no Kinesis operation takes a streaming-signed request body."
)

// Error is an authentication failure: Code is one of the Code constants and
// Message the text sent with it. It never contains a secret key or a session
// token. Every Error is answered with HTTP 400.
type Error struct{ Code, Message string }

// Error returns "Code: Message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

func newError(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// Key is one credential the server knows. SessionToken "" means a long-term
// key: requests that carry X-Amz-Security-Token with it are refused
// (UnrecognizedClientException, "The security token included in the request
// is invalid."). A Key with a SessionToken is a temporary credential: requests
// must carry exactly that token.
type Key struct{ AccessKeyID, SecretAccessKey, SessionToken string }

// Verifier checks AWS Signature Version 4 signatures of Kinesis requests. Its
// fields are read on every call and must not change while Verify is in use;
// zero values select the defaults. A Verifier is safe for concurrent use; it
// holds no state of its own (the signing-key cache is the package's, see the
// package documentation), so it may be copied.
type Verifier struct {
	// Region is the server's region: the credential scope must name it. ""
	// accepts any region (the signature still binds the request to the one it
	// names).
	Region string
	// Service is the service the credential scope must name; default "kinesis".
	Service string
	// MaxSkew is how far X-Amz-Date may lie from Now, either way; default 5
	// minutes, the Kinesis window.
	MaxSkew time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Lookup returns the credential of an access key id, and false when the
	// key is unknown. A nil Lookup knows no key.
	Lookup func(accessKeyID string) (Key, bool)
}

// Result describes a request that verified.
type Result struct {
	AccessKeyID  string
	SignedAt     time.Time // X-Amz-Date (or the Date header), UTC
	Presigned    bool      // query-string signature
	SessionToken bool      // the request carried a (matching) session token
}

const (
	defaultService = "kinesis"
	defaultMaxSkew = 5 * time.Minute
	terminator     = "aws4_request"
	amzDateFormat  = "20060102T150405Z"
)

func (v *Verifier) service() string {
	if v.Service == "" {
		return defaultService
	}
	return v.Service
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew <= 0 {
		return defaultMaxSkew
	}
	return v.MaxSkew
}

func (v *Verifier) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

// request is a parsed signature, from either form, before it is checked.
type request struct {
	authParts
	amzDate   string    // the timestamp in the string to sign: yyyymmddThhmmssZ
	signedAt  time.Time // amzDate as a time
	expires   int64     // X-Amz-Expires in seconds; 0 when absent (always, in the header form)
	token     string    // X-Amz-Security-Token
	hasToken  bool
	presigned bool
	query     string // the canonical query string
}

// Verify checks r's signature over body, the whole request body, which the
// caller has already read: Verify neither reads r.Body nor modifies r. It
// accepts the Authorization header form and the query-string (presigned)
// form. The error, when not nil, is an *Error.
func (v *Verifier) Verify(r *http.Request, body []byte) (Result, error) {
	req, err := parseRequest(r)
	if err != nil {
		return Result{}, err
	}
	if err := v.checkTime(&req); err != nil {
		return Result{}, err
	}
	if err := v.checkScope(&req); err != nil {
		return Result{}, err
	}
	// Over HTTP/2 some SDKs (the JavaScript SDK v3) sign the :authority
	// pseudo-header in place of host.
	if !hasSignedHeader(req.signedHeaders, "host") && !hasSignedHeader(req.signedHeaders, ":authority") {
		return Result{}, newError(CodeInvalidSignature, msgHostUnsigned)
	}
	ph, err := payloadHash(r, body)
	if err != nil {
		return Result{}, err
	}
	key, err := v.lookup(&req)
	if err != nil {
		return Result{}, err
	}
	if err := checkSignature(r, &req, key.SecretAccessKey, &ph); err != nil {
		return Result{}, err
	}
	return Result{
		AccessKeyID:  req.accessKeyID,
		SignedAt:     req.signedAt,
		Presigned:    req.presigned,
		SessionToken: req.hasToken,
	}, nil
}

// parseRequest finds the signature, in the Authorization header or the query
// string, and parses it.
func parseRequest(r *http.Request) (request, *Error) {
	authz, _ := headerFirst(r.Header, "Authorization")
	var q url.Values
	if r.URL != nil && r.URL.RawQuery != "" {
		var err error
		if q, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			return request{}, newError(CodeIncomplete, "The query string is malformed: "+err.Error())
		}
	}
	_, hasAlgorithm := q["X-Amz-Algorithm"]
	switch {
	case authz != "" && hasAlgorithm:
		return request{}, newError(CodeInvalidSignature, msgBoth)
	case authz == "" && !hasAlgorithm:
		return request{}, newError(CodeMissingToken, msgMissingToken)
	case hasAlgorithm:
		return parsePresigned(r, q)
	}

	amzDate, _ := headerFirst(r.Header, "X-Amz-Date")
	httpDate := ""
	if amzDate == "" {
		httpDate, _ = headerFirst(r.Header, "Date")
	}
	parts, err := parseAuthHeader(authz, amzDate == "" && httpDate == "")
	if err != nil {
		return request{}, err
	}
	req := request{authParts: parts, amzDate: amzDate}
	if amzDate != "" {
		t, ok := parseAmzDate(amzDate)
		if !ok {
			return request{}, badDate(amzDate)
		}
		req.signedAt = t
	} else {
		t, ok := parseHTTPDate(httpDate)
		if !ok {
			return request{}, badDate(httpDate)
		}
		// The string to sign carries the Date header's time in ISO 8601 basic
		// format, as botocore (which sends Date when the caller set one) signs it.
		req.signedAt, req.amzDate = t, t.Format(amzDateFormat)
	}
	req.token, req.hasToken = headerFirst(r.Header, "X-Amz-Security-Token")
	req.hasToken = req.hasToken && req.token != ""
	if q != nil {
		req.query = canonicalQuery(q, false)
	}
	return req, nil
}

// parsePresigned parses the query-string form.
func parsePresigned(r *http.Request, q url.Values) (request, *Error) {
	a, err := parseQuery(q)
	if err != nil {
		return request{}, err
	}
	req := request{authParts: a.authParts, amzDate: a.amzDate, signedAt: a.signedAt, expires: a.expires, presigned: true}
	if vs := q["X-Amz-Security-Token"]; len(vs) > 0 && vs[0] != "" {
		req.token, req.hasToken = vs[0], true
	} else {
		req.token, req.hasToken = headerFirst(r.Header, "X-Amz-Security-Token")
		req.hasToken = req.hasToken && req.token != ""
	}
	req.query = canonicalQuery(q, true)
	return req, nil
}

// checkTime refuses a request signed more than MaxSkew from now, or a
// presigned one past its X-Amz-Expires, with the messages AWS sends (which the
// SDKs' clock-skew correction recognises by the code).
func (v *Verifier) checkTime(req *request) *Error {
	now := v.now().UTC().Truncate(time.Second)
	skew := v.maxSkew()
	t := req.signedAt
	if t.After(now.Add(skew)) {
		return newError(CodeInvalidSignature, fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s)",
			t.Format(amzDateFormat), now.Add(skew).Format(amzDateFormat), now.Format(amzDateFormat), minutes(skew)))
	}
	window := skew
	if req.expires > 0 {
		window = time.Duration(req.expires) * time.Second
	}
	if t.Before(now.Add(-window)) {
		return newError(CodeInvalidSignature, fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s)",
			t.Format(amzDateFormat), now.Add(-window).Format(amzDateFormat), now.Format(amzDateFormat), minutes(window)))
	}
	return nil
}

// minutes writes a duration as AWS does in skew messages ("5 min."); one that
// is not whole minutes is written in seconds.
func minutes(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d min.", d/time.Minute)
	}
	return fmt.Sprintf("%d sec.", d/time.Second)
}

// checkScope checks the credential scope against the server's region and
// service, the terminator, and the request date. Like AWS it reports every
// mismatch at once, each sentence followed by a space.
func (v *Verifier) checkScope(req *request) *Error {
	regionOK := v.Region == "" || req.region == v.Region
	serviceOK := req.service == v.service()
	termOK := req.terminator == terminator
	dateOK := len(req.amzDate) >= 8 && req.date == req.amzDate[:8]
	if regionOK && serviceOK && termOK && dateOK {
		return nil
	}
	var b strings.Builder
	if !regionOK {
		fmt.Fprintf(&b, "Credential should be scoped to a valid region, not '%s'. ", req.region)
	}
	if !serviceOK {
		fmt.Fprintf(&b, "Credential should be scoped to correct service: '%s'. ", v.service())
	}
	if !termOK {
		fmt.Fprintf(&b, "Credential should be scoped with a valid terminator: '%s', not '%s'. ", terminator, req.terminator)
	}
	if !dateOK {
		fmt.Fprintf(&b, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'. ",
			req.date, req.amzDate[:min(8, len(req.amzDate))], req.amzDate)
	}
	return newError(CodeInvalidSignature, b.String())
}

// lookup finds the request's key and checks its session token: a temporary
// key needs its token, a long-term key refuses any.
func (v *Verifier) lookup(req *request) (Key, *Error) {
	if v.Lookup == nil {
		return Key{}, newError(CodeUnrecognizedClient, msgInvalidToken)
	}
	key, ok := v.Lookup(req.accessKeyID)
	if !ok {
		return Key{}, newError(CodeUnrecognizedClient, msgInvalidToken)
	}
	if req.hasToken != (key.SessionToken != "") {
		return Key{}, newError(CodeUnrecognizedClient, msgInvalidToken)
	}
	if req.hasToken && subtle.ConstantTimeCompare([]byte(req.token), []byte(key.SessionToken)) != 1 {
		return Key{}, newError(CodeUnrecognizedClient, msgInvalidToken)
	}
	return key, nil
}

// headerFirst returns the first value of the named header, looked up without
// regard to case.
func headerFirst(h http.Header, name string) (string, bool) {
	vs, ok := headerValues(h, name)
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// headerValues returns the values of the named header, looked up without
// regard to case: under the name as given, then under its canonical form
// (net/http canonicalises the keys of HTTP/1 and HTTP/2 requests alike), then
// by a scan, for requests built by hand.
func headerValues(h http.Header, name string) ([]string, bool) {
	if vs, ok := h[name]; ok {
		return vs, true
	}
	var buf [64]byte
	if key, ok := canonicalKey(buf[:0], name); ok {
		if vs, ok := h[string(key)]; ok { // the string(key) index does not allocate
			return vs, true
		}
	}
	for k, vs := range h {
		if len(k) == len(name) && strings.EqualFold(k, name) {
			return vs, true
		}
	}
	return nil, false
}

// canonicalKey appends name in net/textproto's canonical form ("x-amz-date" →
// "X-Amz-Date"), or reports false if textproto would leave it unchanged.
func canonicalKey(dst []byte, name string) ([]byte, bool) {
	if name == "" || len(name) > cap(dst) {
		return nil, false
	}
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !tchar[c] {
			return nil, false
		}
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
		upper = c == '-'
	}
	return dst, true
}

// tchar marks the bytes that may appear in an HTTP header name (RFC 9110 tchar).
var tchar = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
	}
	return t
}()
