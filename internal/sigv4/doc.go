// Package sigv4 verifies AWS Signature Version 4 on the server side, for
// Kinesis requests: the Authorization header form every SDK sends, and the
// query-string (presigned) form.
//
// A Verifier holds the server's region and a Lookup from access key id to
// Key. Verify takes the request as net/http delivered it and the body the
// caller has already read:
//
//	v := &sigv4.Verifier{Region: "us-east-1", Lookup: keys.Get}
//	res, err := v.Verify(r, body)
//	var e *sigv4.Error
//	if errors.As(err, &e) { /* answer 400 with e.Code and e.Message */ }
//
// # What is signed
//
// The canonical request is rebuilt strictly from the client's SignedHeaders
// list, in the client's order, never from a list of its own: so clients that
// sign User-Agent (Java SDK v1) verify, and headers added after signing (Go's
// Accept-Encoding, proxies' X-Forwarded-*) are ignored. Values come from where
// net/http puts them: host from r.Host exactly as received, content-length from
// r.ContentLength, transfer-encoding from r.TransferEncoding, and a signed
// Expect the server consumed is "100-continue". Header names are matched
// without regard to case (HTTP/2 sends them lowercase). Repeated headers are
// joined with ",", and each value is trimmed with runs of spaces collapsed.
// host must be signed.
//
// The payload hash is X-Amz-Content-Sha256 when present: UNSIGNED-PAYLOAD
// (Java SDK v2 over HTTPS) only when r.TLS is set, a hex digest only when it
// is the body's SHA-256, STREAMING-* never. Without the header the body is
// hashed, as the Go SDK and botocore sign it.
//
// # Errors
//
// Every failure is an *Error whose Code is one of the four Kinesis codes,
// answered with HTTP 400, and whose Message is Kinesis's text where it is
// known: "Missing Authentication Token"; IncompleteSignatureException for a
// malformed or incomplete signature ("Authorization header requires
// 'Credential' parameter. ... Authorization=<header>"); InvalidSignatureException
// for a signature that does not match, a wrong scope ("Credential should be
// scoped to correct service: 'kinesis'. "), or a clock more than MaxSkew
// (default 5 minutes) off ("Signature expired: ... (... - 5 min.)"), which the
// SDKs recognise to correct their clock; UnrecognizedClientException for an
// unknown key or a wrong session token. Messages may echo the Authorization
// header, which holds no secret; they never contain a secret key or a token.
// Signatures and tokens are compared in constant time.
//
// # Presigned requests
//
// X-Amz-Algorithm=AWS4-HMAC-SHA256 in the query string selects the query
// form. The canonical query is every parameter but X-Amz-Signature. With
// X-Amz-Expires (1..604800 seconds) the request is good for that long after
// X-Amz-Date; without it, for MaxSkew, like a header-signed one. A request
// carrying both forms is refused, as AWS refuses it.
//
// # Cost and locks
//
// Verify hashes the body once (SHA-256) and, for a header-signed request
// without a query string, does not allocate. Derived signing keys (four HMACs
// each) are cached per (secret, date, region, service) in one process-wide
// cache of at most 1024 entries: the key is a pure function of those four, so
// Verifiers share it safely, and a changed secret is a new entry, never a
// stale hit. The cache holds the package's only lock, keyCache.mu, a
// sync.RWMutex that guards the cache map: a lookup holds the read lock for
// one map read, a miss (about once per key per day) the write lock for one
// insert and at most one eviction; nothing else is locked or called while it
// is held. The canonical request is built in buffers from a sync.Pool.
//
// # Caveats
//
// Cached entries keep secrets in memory until evicted, also after Lookup
// stops returning their key (Lookup is still asked on every request, so a
// removed key is refused at once). UNSIGNED-PAYLOAD is refused when r.TLS is
// nil, so behind a proxy that terminates TLS such clients must be told to
// sign the payload. The path is not normalised (Kinesis always signs "/").
// Whether Kinesis appends "The Canonical String for this request should have
// been ..." to a mismatch is unknown; this package does not, so as not to
// help a forger.
package sigv4
