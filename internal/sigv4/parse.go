package sigv4

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Authorization is a parsed SigV4 signature: the Authorization header
// (ParseAuthorization) or the query-string parameters (ParseQuery).
type Authorization struct {
	// AccessKeyID, Date (yyyymmdd), Region and Service come from the
	// credential scope, AccessKeyID/Date/Region/Service/Terminator.
	AccessKeyID, Date, Region, Service string
	// SignedHeaders are the header names the client signed, in its order.
	SignedHeaders []string
	// Signature is the signature as sent: 64 lowercase hex digits from a
	// well-behaved client, though parsing does not check that.
	Signature string
	// Terminator is the credential scope's last element; Verify requires
	// "aws4_request".
	Terminator string
	// AmzDate is X-Amz-Date (yyyymmddThhmmssZ). Set by ParseQuery only: the
	// header form takes its date from the X-Amz-Date or Date header.
	AmzDate string
	// Expires is X-Amz-Expires, 0 when absent. Set by ParseQuery only.
	Expires time.Duration
}

// authParts is Authorization without allocations: SignedHeaders stays the
// ';'-separated string the client sent, which the canonical request repeats.
type authParts struct {
	accessKeyID, date, region, service, terminator string
	signedHeaders                                  string
	signature                                      string
}

func (p *authParts) exported() Authorization {
	return Authorization{
		AccessKeyID:   p.accessKeyID,
		Date:          p.date,
		Region:        p.region,
		Service:       p.service,
		SignedHeaders: strings.Split(p.signedHeaders, ";"),
		Signature:     p.signature,
		Terminator:    p.terminator,
	}
}

// ParseAuthorization parses an Authorization header value:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20180920/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=<hex>
//
// Parameters are separated by commas and/or spaces; unknown parameters are
// ignored. The error, when not nil, is an *Error with Code CodeIncomplete. It
// checks syntax only; Verify checks the scope, the date and the signature.
func ParseAuthorization(h string) (Authorization, error) {
	p, err := parseAuthHeader(h, false)
	if err != nil {
		return Authorization{}, err
	}
	return p.exported(), nil
}

// parseAuthHeader parses the header form. noDate says the request has neither
// X-Amz-Date nor Date, which Kinesis reports with the missing parameters.
func parseAuthHeader(h string, noDate bool) (authParts, *Error) {
	h = strings.TrimLeft(h, " \t")
	alg, rest, _ := strings.Cut(h, " ")
	if alg != Algorithm {
		return authParts{}, newError(CodeIncomplete, "Unsupported AWS 'algorithm': '"+alg+"'.")
	}
	var credential, signedHeaders, signature string
	for rest != "" {
		var field string
		i := strings.IndexAny(rest, ", \t")
		if i < 0 {
			field, rest = rest, ""
		} else {
			field, rest = rest[:i], rest[i+1:]
		}
		if field == "" {
			continue
		}
		k, val, ok := strings.Cut(field, "=")
		if !ok {
			return authParts{}, newError(CodeIncomplete,
				"'"+field+"' not a valid key=value pair (missing equal-sign) in Authorization header: '"+h+"'")
		}
		switch k {
		case "Credential":
			credential = val
		case "SignedHeaders":
			signedHeaders = val
		case "Signature":
			signature = val
		}
	}
	if credential == "" || signature == "" || signedHeaders == "" || noDate {
		var b strings.Builder
		if credential == "" {
			b.WriteString("Authorization header requires 'Credential' parameter. ")
		}
		if signature == "" {
			b.WriteString("Authorization header requires 'Signature' parameter. ")
		}
		if signedHeaders == "" {
			b.WriteString("Authorization header requires 'SignedHeaders' parameter. ")
		}
		if noDate {
			b.WriteString("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ")
		}
		b.WriteString("Authorization=")
		b.WriteString(h)
		return authParts{}, newError(CodeIncomplete, b.String())
	}
	p, err := parseCredential(credential)
	if err != nil {
		return authParts{}, err
	}
	if err := checkSignedHeaders(signedHeaders); err != nil {
		return authParts{}, err
	}
	p.signedHeaders, p.signature = signedHeaders, signature
	return p, nil
}

// parseCredential splits AccessKeyID/Date/Region/Service/Terminator.
func parseCredential(c string) (authParts, *Error) {
	var f [5]string
	rest := c
	for i := range f {
		if i == len(f)-1 {
			f[i] = rest
			break
		}
		var ok bool
		if f[i], rest, ok = strings.Cut(rest, "/"); !ok {
			return authParts{}, badCredential(c)
		}
	}
	if strings.IndexByte(f[4], '/') >= 0 {
		return authParts{}, badCredential(c)
	}
	return authParts{accessKeyID: f[0], date: f[1], region: f[2], service: f[3], terminator: f[4]}, nil
}

func badCredential(c string) *Error {
	return newError(CodeIncomplete,
		"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '"+c+"'")
}

// checkSignedHeaders refuses an empty name in the SignedHeaders list.
func checkSignedHeaders(s string) *Error {
	for rest := s; ; {
		name, more, found := strings.Cut(rest, ";")
		if name == "" {
			return newError(CodeIncomplete, "SignedHeaders must not contain an empty header name, got '"+s+"'")
		}
		if !found {
			return nil
		}
		rest = more
	}
}

// hasSignedHeader reports whether the ';'-separated list names the header.
func hasSignedHeader(list, name string) bool {
	for rest := list; ; {
		h, more, found := strings.Cut(rest, ";")
		if strings.EqualFold(h, name) {
			return true
		}
		if !found {
			return false
		}
		rest = more
	}
}

// ParseQuery parses the query-string (presigned) form: X-Amz-Algorithm,
// X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders, X-Amz-Signature and the
// optional X-Amz-Expires (1..604800 seconds). The error, when not nil, is an
// *Error with Code CodeIncomplete.
func ParseQuery(q url.Values) (Authorization, error) {
	p, err := parseQuery(q)
	if err != nil {
		return Authorization{}, err
	}
	a := p.exported()
	a.AmzDate = p.amzDate
	a.Expires = time.Duration(p.expires) * time.Second
	return a, nil
}

// maxExpires is the longest X-Amz-Expires AWS allows, a week in seconds.
const maxExpires = 604800

type queryParts struct {
	authParts
	amzDate  string
	signedAt time.Time
	expires  int64
}

func parseQuery(q url.Values) (queryParts, *Error) {
	if alg := q.Get("X-Amz-Algorithm"); alg != Algorithm {
		return queryParts{}, newError(CodeIncomplete, "Unsupported AWS 'algorithm': '"+alg+"'.")
	}
	credential, signature := q.Get("X-Amz-Credential"), q.Get("X-Amz-Signature")
	signedHeaders, amzDate := q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Date")
	if credential == "" || signature == "" || signedHeaders == "" || amzDate == "" {
		var b strings.Builder
		for _, p := range [...]struct{ name, value string }{
			{"X-Amz-Credential", credential},
			{"X-Amz-Signature", signature},
			{"X-Amz-SignedHeaders", signedHeaders},
			{"X-Amz-Date", amzDate},
		} {
			if p.value == "" {
				b.WriteString("AWS query-string parameters must include '" + p.name + "'. ")
			}
		}
		b.WriteString("Re-examine the query-string parameters.")
		return queryParts{}, newError(CodeIncomplete, b.String())
	}
	p, err := parseCredential(credential)
	if err != nil {
		return queryParts{}, err
	}
	if err := checkSignedHeaders(signedHeaders); err != nil {
		return queryParts{}, err
	}
	p.signedHeaders, p.signature = signedHeaders, signature
	t, ok := parseAmzDate(amzDate)
	if !ok {
		return queryParts{}, badDate(amzDate)
	}
	out := queryParts{authParts: p, amzDate: amzDate, signedAt: t}
	if vs, ok := q["X-Amz-Expires"]; ok {
		s := ""
		if len(vs) > 0 {
			s = vs[0]
		}
		n, err := strconv.ParseInt(s, 10, 64)
		switch {
		case err != nil:
			return queryParts{}, newError(CodeIncomplete, "X-Amz-Expires should be a number, got '"+s+"'.")
		case n < 1:
			return queryParts{}, newError(CodeIncomplete, "X-Amz-Expires must be at least 1 second, got '"+s+"'.")
		case n > maxExpires:
			return queryParts{}, newError(CodeIncomplete, "X-Amz-Expires must be less than a week (in seconds) that is 604800")
		}
		out.expires = n
	}
	return out, nil
}

func badDate(s string) *Error {
	return newError(CodeIncomplete, "Date must be in ISO-8601 'basic format'. Got '"+s+"'. See http://en.wikipedia.org/wiki/ISO_8601")
}

// parseAmzDate parses yyyymmddThhmmssZ strictly (no allocation, unlike
// time.Parse): a value that parses formats back to itself.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != len(amzDateFormat) || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(4, 6)
	day, ok3 := num(6, 8)
	hour, ok4 := num(9, 11)
	minute, ok5 := num(11, 13)
	sec, ok6 := num(13, 15)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	// time.Date normalises out-of-range fields (month 13, 30 February...);
	// refuse those rather than accept a date the client did not write.
	if t.Year() != year || int(t.Month()) != month || t.Day() != day ||
		t.Hour() != hour || t.Minute() != minute || t.Second() != sec {
		return time.Time{}, false
	}
	return t, true
}

// parseHTTPDate parses a Date header: the three HTTP formats, and RFC 1123
// with a numeric zone, which botocore writes ("... 12:00:00 -0000").
func parseHTTPDate(s string) (time.Time, bool) {
	if t, err := http.ParseTime(s); err == nil {
		return t.UTC(), true
	}
	if t, err := time.Parse(time.RFC1123Z, s); err == nil {
		return t.UTC(), true
	}
	return time.Time{}, false
}
