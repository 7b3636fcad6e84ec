package sigv4_test

import (
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/shoalstream/shoal/internal/sigv4"
)

func TestParseAuthorization(t *testing.T) {
	sig := "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
	want := sigv4.Authorization{
		AccessKeyID: "AKIDEXAMPLE", Date: "20150830", Region: "us-east-1", Service: "kinesis", Terminator: "aws4_request",
		SignedHeaders: []string{"content-type", "host", "x-amz-date"}, Signature: sig,
	}
	for _, h := range []string{
		// Go SDK, Java SDK: ", " between the parts.
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + sig,
		// Bare commas, bare spaces, other order, an unknown parameter.
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request,SignedHeaders=content-type;host;x-amz-date,Signature=" + sig,
		"AWS4-HMAC-SHA256 Signature=" + sig + " Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request SignedHeaders=content-type;host;x-amz-date",
		"AWS4-HMAC-SHA256  Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, ,SignedHeaders=content-type;host;x-amz-date, Extra=1, Signature=" + sig,
	} {
		got, err := sigv4.ParseAuthorization(h)
		if err != nil {
			t.Fatalf("ParseAuthorization(%q): %v", h, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseAuthorization(%q) =\n%+v, want\n%+v", h, got, want)
		}
	}

	for _, tc := range []struct{ h, msg string }{
		{"", "Unsupported AWS 'algorithm': ''."},
		{"AWS AKID:sig", "Unsupported AWS 'algorithm': 'AWS'."},
		{"AWS4-HMAC-SHA256", "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
			"Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256"},
		{"AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=00",
			"Authorization header requires 'Credential' parameter. Authorization=AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=00"},
		{"AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=host, Signature=00",
			"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'a/b/c/d/e/f'"},
		{"AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host;;x, Signature=00",
			"SignedHeaders must not contain an empty header name, got 'host;;x'"},
		{"AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host;, Signature=00",
			"SignedHeaders must not contain an empty header name, got 'host;'"},
		{"AWS4-HMAC-SHA256 Credential, Signature=00",
			"'Credential' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential, Signature=00'"},
	} {
		_, err := sigv4.ParseAuthorization(tc.h)
		wantError(t, err, sigv4.CodeIncomplete, tc.msg)
	}
}

func TestParseQuery(t *testing.T) {
	q := url.Values{
		"X-Amz-Algorithm":     {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential":    {"AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request"},
		"X-Amz-Date":          {"20150830T123600Z"},
		"X-Amz-Expires":       {"300"},
		"X-Amz-SignedHeaders": {"host"},
		"X-Amz-Signature":     {"00"},
	}
	got, err := sigv4.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	want := sigv4.Authorization{
		AccessKeyID: "AKIDEXAMPLE", Date: "20150830", Region: "us-east-1", Service: "kinesis", Terminator: "aws4_request",
		SignedHeaders: []string{"host"}, Signature: "00", AmzDate: "20150830T123600Z", Expires: 300 * time.Second,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseQuery = %+v, want %+v", got, want)
	}
	q.Set("X-Amz-Date", "2015-08-30")
	_, err = sigv4.ParseQuery(q)
	wantError(t, err, sigv4.CodeIncomplete, "Date must be in ISO-8601 'basic format'. Got '2015-08-30'. See http://en.wikipedia.org/wiki/ISO_8601")
	_, err = sigv4.ParseQuery(url.Values{"X-Amz-Algorithm": {"AWS4-HMAC-SHA256"}})
	wantError(t, err, sigv4.CodeIncomplete, "AWS query-string parameters must include 'X-Amz-Credential'. "+
		"AWS query-string parameters must include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. "+
		"AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters.")
}

// TestErrorText: Error() is "Code: Message" and never carries a secret.
func TestErrorText(t *testing.T) {
	e := &sigv4.Error{Code: sigv4.CodeMissingToken, Message: "Missing Authentication Token"}
	if e.Error() != "MissingAuthenticationTokenException: Missing Authentication Token" {
		t.Fatal(e.Error())
	}
}
