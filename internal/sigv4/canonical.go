package sigv4

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

const unsignedPayload = "UNSIGNED-PAYLOAD"

// payload is the HashedPayload of the canonical request: the
// X-Amz-Content-Sha256 header verbatim, or the body's SHA-256.
type payload struct {
	header string // used when not ""
	sum    [sha256.Size]byte
}

// payloadHash applies the server's payload rule: an X-Amz-Content-Sha256 header
// is used verbatim, UNSIGNED-PAYLOAD only over TLS, a hex value only if it is
// the body's SHA-256, STREAMING-* never; without the header the body is hashed.
func payloadHash(r *http.Request, body []byte) (payload, *Error) {
	h, ok := headerFirst(r.Header, "X-Amz-Content-Sha256")
	if !ok {
		return payload{sum: sha256.Sum256(body)}, nil
	}
	switch {
	case h == unsignedPayload:
		if r.TLS == nil {
			return payload{}, newError(CodeInvalidSignature, msgUnsignedOverHTTP)
		}
		return payload{header: h}, nil
	case strings.HasPrefix(h, "STREAMING-"):
		return payload{}, newError(CodeInvalidSignature, fmt.Sprintf(msgStreaming, h))
	}
	want, ok := decodeHex32(h, true)
	if !ok {
		return payload{}, newError(CodeInvalidSignature, msgPayloadMalformed)
	}
	if sha256.Sum256(body) != want {
		return payload{}, newError(CodeInvalidSignature, msgPayloadMismatch)
	}
	return payload{header: h}, nil
}

// scratch holds the buffer the canonical request and the string to sign are
// built in, reused across requests.
type scratch struct{ b []byte }

var scratchPool = sync.Pool{New: func() any { return &scratch{b: make([]byte, 0, 1024)} }}

// checkSignature recomputes the signature and compares it, in constant time,
// with the one sent.
func checkSignature(r *http.Request, req *request, secret string, ph *payload) *Error {
	sc := scratchPool.Get().(*scratch)
	defer func() {
		if cap(sc.b) <= 64<<10 { // do not pin a buffer a giant request grew
			scratchPool.Put(sc)
		}
	}()

	b, err := appendCanonicalRequest(sc.b[:0], r, req, ph)
	sc.b = b
	if err != nil {
		return err
	}
	crHash := sha256.Sum256(b)

	// The string to sign, after room for the padded key: see hmacSHA256.
	key := signingKey(secret, req.date, req.region, req.service)
	b = append(b[:0], make([]byte, sha256.BlockSize)...)
	b = append(b, Algorithm+"\n"...)
	b = append(b, req.amzDate...)
	b = append(b, '\n')
	b = appendScope(b, req)
	b = append(b, '\n')
	b = hex.AppendEncode(b, crHash[:])
	sc.b = b
	got := hmacSHA256(&key, b)

	sent, ok := decodeHex32(req.signature, false)
	if subtle.ConstantTimeCompare(got[:], sent[:]) != 1 || !ok {
		return newError(CodeInvalidSignature, msgSignatureMismatch)
	}
	return nil
}

// hmacSHA256 returns HMAC-SHA256 (RFC 2104) under key of the message
// b[sha256.BlockSize:]; it overwrites b[:sha256.BlockSize] with the padded
// key. It exists because crypto/hmac allocates per key, and a request's key
// changes per request; the tests check it against crypto/hmac.
func hmacSHA256(key *[sha256.Size]byte, b []byte) [sha256.Size]byte {
	pad := b[:sha256.BlockSize]
	for i := range pad {
		pad[i] = 0x36
	}
	for i, k := range key {
		pad[i] ^= k
	}
	inner := sha256.Sum256(b)
	var outer [sha256.BlockSize + sha256.Size]byte
	for i := range sha256.BlockSize {
		outer[i] = 0x5c
	}
	for i, k := range key {
		outer[i] ^= k
	}
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:])
}

func appendScope(b []byte, req *request) []byte {
	b = append(b, req.date...)
	b = append(b, '/')
	b = append(b, req.region...)
	b = append(b, '/')
	b = append(b, req.service...)
	b = append(b, '/')
	return append(b, terminator...)
}

// appendCanonicalRequest appends
//
//	METHOD\nURI\nQUERY\nHEADERS\n\nSIGNEDHEADERS\nHASHEDPAYLOAD
//
// where the headers are exactly those the client listed, in its order.
func appendCanonicalRequest(b []byte, r *http.Request, req *request, ph *payload) ([]byte, *Error) {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	b = append(b, method...)
	b = append(b, '\n')
	path := ""
	if r.URL != nil {
		path = r.URL.EscapedPath()
	}
	if path == "" {
		path = "/"
	}
	b = appendEscapedPath(b, path)
	b = append(b, '\n')
	b = append(b, req.query...)
	b = append(b, '\n')
	for rest := req.signedHeaders; ; {
		name, more, found := strings.Cut(rest, ";")
		b = append(b, name...)
		b = append(b, ':')
		var ok bool
		if b, ok = appendHeader(b, r, name); !ok {
			return b, newError(CodeInvalidSignature,
				"Header '"+name+"' is named in SignedHeaders but is not present in the request.")
		}
		b = append(b, '\n')
		if !found {
			break
		}
		rest = more
	}
	b = append(b, '\n')
	b = append(b, req.signedHeaders...)
	b = append(b, '\n')
	if ph.header != "" {
		return append(b, ph.header...), nil
	}
	return hex.AppendEncode(b, ph.sum[:]), nil
}

// appendHeader appends the canonical value of one signed header, taken where
// net/http leaves it: Host (and HTTP/2's :authority, which some clients sign
// in its place) in r.Host, Content-Length in r.ContentLength,
// Transfer-Encoding in r.TransferEncoding; the server consumes
// "Expect: 100-continue", so a signed but missing Expect is that.
func appendHeader(b []byte, r *http.Request, name string) ([]byte, bool) {
	switch {
	case strings.EqualFold(name, "host") || name == ":authority":
		host := r.Host
		if host == "" && r.URL != nil {
			host = r.URL.Host
		}
		if host == "" {
			return b, false
		}
		return appendValue(b, host), true
	case strings.EqualFold(name, "content-length"):
		if r.ContentLength >= 0 {
			return strconv.AppendInt(b, r.ContentLength, 10), true
		}
	case strings.EqualFold(name, "transfer-encoding"):
		if len(r.TransferEncoding) > 0 {
			return appendValues(b, r.TransferEncoding), true
		}
	}
	vs, ok := headerValues(r.Header, name)
	if !ok {
		if strings.EqualFold(name, "expect") {
			return append(b, "100-continue"...), true
		}
		return b, false
	}
	return appendValues(b, vs), true
}

// appendValues appends the values of a header, each trimmed with runs of
// spaces collapsed, joined with ",".
func appendValues(b []byte, vs []string) []byte {
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendValue(b, v)
	}
	return b
}

// appendValue appends v trimmed of surrounding white space, with each run of
// spaces inside it written as one, as the AWS SDKs canonicalise values.
func appendValue(b []byte, v string) []byte {
	v = strings.TrimSpace(v)
	for {
		i := strings.Index(v, "  ")
		if i < 0 {
			return append(b, v...)
		}
		b = append(b, v[:i+1]...)
		v = strings.TrimLeft(v[i:], " ")
	}
}

// unreserved reports whether c is left as is by SigV4's URI encoding (RFC 3986
// unreserved characters).
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// appendEscapedPath appends the canonical URI of an escaped path: non-S3
// services encode it once more, every byte but unreserved ones and '/'
// ("/a%20b" is signed as "/a%2520b"), as the Go SDK's signer does.
func appendEscapedPath(b []byte, p string) []byte {
	for i := 0; i < len(p); i++ {
		if c := p[i]; unreserved(c) || c == '/' {
			b = append(b, c)
		} else {
			b = appendPercent(b, c)
		}
	}
	return b
}

func appendPercent(b []byte, c byte) []byte {
	const hexUpper = "0123456789ABCDEF"
	return append(b, '%', hexUpper[c>>4], hexUpper[c&15])
}

// appendQueryComponent appends s URI-encoded for the canonical query string:
// all but unreserved bytes as %XX (so a space is %20, never +).
func appendQueryComponent(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; unreserved(c) {
			b = append(b, c)
		} else {
			b = appendPercent(b, c)
		}
	}
	return b
}

// canonicalQuery encodes every parameter (but X-Amz-Signature when
// skipSignature), then sorts by encoded name and value: SigV4 sorts after
// encoding.
func canonicalQuery(q url.Values, skipSignature bool) string {
	type pair struct{ k, v string }
	pairs := make([]pair, 0, len(q))
	for k, vs := range q {
		if skipSignature && k == "X-Amz-Signature" {
			continue
		}
		ek := string(appendQueryComponent(nil, k))
		for _, v := range vs {
			pairs = append(pairs, pair{ek, string(appendQueryComponent(nil, v))})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		return cmp.Or(strings.Compare(a.k, b.k), strings.Compare(a.v, b.v))
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// decodeHex32 decodes 64 hex digits; lowercase only unless upper.
func decodeHex32(s string, upper bool) ([32]byte, bool) {
	var out [32]byte
	if len(s) != 64 {
		return out, false
	}
	nibble := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'a' <= c && c <= 'f':
			return c - 'a' + 10, true
		case upper && 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	for i := range out {
		hi, ok1 := nibble(s[2*i])
		lo, ok2 := nibble(s[2*i+1])
		if !ok1 || !ok2 {
			return out, false
		}
		out[i] = hi<<4 | lo
	}
	return out, true
}

// keyCacheMax bounds the signing-key cache. A key is derived per secret and
// day (and region and service, fixed per server), so this covers 1024 keys
// active at once; past that, each miss evicts an arbitrary entry.
const keyCacheMax = 1024

type cacheKey struct{ secret, date, region, service string }

// keyCache caches derived signing keys, which cost four HMACs each. A derived
// key is a pure function of its cache key, so one cache serves every Verifier.
type keyCache struct {
	mu sync.RWMutex // guards m
	m  map[cacheKey][sha256.Size]byte
}

var signingKeys = keyCache{m: make(map[cacheKey][sha256.Size]byte)}

// signingKey returns HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region),
// service), "aws4_request"), from the cache when it can.
func signingKey(secret, date, region, service string) [sha256.Size]byte {
	c := &signingKeys
	k := cacheKey{secret, date, region, service}
	c.mu.RLock()
	key, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return key
	}
	key = deriveKey(secret, date, region, service)
	// Clone the strings: date, region and service point into the request's
	// Authorization header, which the cache must not keep alive.
	k = cacheKey{strings.Clone(secret), strings.Clone(date), strings.Clone(region), strings.Clone(service)}
	c.mu.Lock()
	if _, ok := c.m[k]; !ok && len(c.m) >= keyCacheMax {
		for old := range c.m { // map order is random: evict an arbitrary entry
			delete(c.m, old)
			break
		}
	}
	c.m[k] = key
	c.mu.Unlock()
	return key
}

func deriveKey(secret, date, region, service string) [sha256.Size]byte {
	step := func(key []byte, data string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	k := step([]byte("AWS4"+secret), date)
	k = step(k, region)
	k = step(k, service)
	return [sha256.Size]byte(step(k, terminator))
}
