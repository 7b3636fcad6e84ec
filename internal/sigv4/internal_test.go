package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// sdkCanonicalValue is the Go SDK's value rule (v4.go buildCanonicalHeaders:
// strings.TrimSpace(StripExcessSpaces(v))), rewritten here to compare with.
func sdkCanonicalValue(v string) string {
	v = strings.Trim(v, " ")
	for strings.Contains(v, "  ") {
		v = strings.ReplaceAll(v, "  ", " ")
	}
	return strings.TrimSpace(v)
}

func TestAppendValueMatchesSDK(t *testing.T) {
	cases := []string{"", " ", "a", " a ", "a  b", "  a   b  c  ", "\ta  b\t", "a \t  b", "\t  x", "x  \t", "a,  b", "  "}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{' ', ' ', '\t', 'a', 'b', ','}
	for range 5000 {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		if got, want := string(appendValue(nil, c)), sdkCanonicalValue(c); got != want {
			t.Fatalf("appendValue(%q) = %q, SDK rule gives %q", c, got, want)
		}
	}
}

func TestCanonicalKeyMatchesTextproto(t *testing.T) {
	for _, name := range []string{"x-amz-date", "X-AMZ-DATE", "host", "content-md5", "a", "-x-", "x_y", "with space", "ü", "1-2", "x--y"} {
		got, ok := canonicalKey(make([]byte, 0, 64), name)
		want := textproto.CanonicalMIMEHeaderKey(name)
		if ok && string(got) != want {
			t.Errorf("canonicalKey(%q) = %q, textproto %q", name, got, want)
		}
		if !ok && want != name {
			t.Errorf("canonicalKey(%q) refused, textproto gives %q", name, want)
		}
	}
}

func TestHMACMatchesCryptoHMAC(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := range 300 {
		var key [sha256.Size]byte
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		m := hmac.New(sha256.New, key[:])
		m.Write(msg)
		want := m.Sum(nil)
		buf := append(make([]byte, sha256.BlockSize), msg...)
		if got := hmacSHA256(&key, buf); !hmac.Equal(got[:], want) {
			t.Fatalf("len %d: hmacSHA256 = %x, crypto/hmac %x", n, got, want)
		}
	}
}

// TestDeriveKeyAWSExample is the signing-key example of the AWS
// documentation ("Examples of how to derive a signing key for Signature
// Version 4").
func TestDeriveKeyAWSExample(t *testing.T) {
	k := deriveKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
	if got := hex.EncodeToString(k[:]); got != "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d" {
		t.Fatalf("kSigning = %s", got)
	}
	// A secret longer than the HMAC block size is hashed first: still right.
	long := strings.Repeat("s", 100)
	m := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	want := m(m(m(m([]byte("AWS4"+long), "20260301"), "r"), "kinesis"), "aws4_request")
	if k := deriveKey(long, "20260301", "r", "kinesis"); !hmac.Equal(k[:], want) {
		t.Fatal("long secret derived wrongly")
	}
}

// TestKeyCacheBoundedAndConcurrent fills the cache past its bound from many
// goroutines (run with -race) and checks every key it hands out.
func TestKeyCacheBoundedAndConcurrent(t *testing.T) {
	const secrets = keyCacheMax + 300
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range secrets {
				s := fmt.Sprint("secret-", (i*7+g)%secrets)
				if got := signingKey(s, "20260301", "us-east-1", "kinesis"); got != deriveKey(s, "20260301", "us-east-1", "kinesis") {
					t.Errorf("wrong key for %s", s)
					return
				}
			}
		})
	}
	wg.Wait()
	signingKeys.mu.RLock()
	n := len(signingKeys.m)
	signingKeys.mu.RUnlock()
	if n > keyCacheMax || n == 0 {
		t.Fatalf("cache holds %d keys, bound %d", n, keyCacheMax)
	}
	// A changed secret for the same day is a different entry, never a stale hit.
	a := signingKey("one", "20260301", "us-east-1", "kinesis")
	b := signingKey("two", "20260301", "us-east-1", "kinesis")
	if a == b {
		t.Fatal("two secrets share a cached key")
	}
}

func TestParseAmzDate(t *testing.T) {
	for _, s := range []string{"20260301T120000Z", "20240229T235959Z", "00010101T000000Z", "99991231T235959Z"} {
		tm, ok := parseAmzDate(s)
		if !ok || tm.Format(amzDateFormat) != s {
			t.Errorf("parseAmzDate(%q) = %v, %v", s, tm, ok)
		}
	}
	for _, s := range []string{"", "20260301T120000", "20260301T120000z", "2026030lT120000Z", "20250229T120000Z",
		"20261301T120000Z", "20260301T240000Z", "20260301T126000Z", "20260301 120000Z", "+0260301T120000Z"} {
		if _, ok := parseAmzDate(s); ok {
			t.Errorf("parseAmzDate(%q) accepted", s)
		}
	}
}

// TestVerifyAllocations: the header form with no query string does not
// allocate once the signing key is cached. sync.Pool drops items at random
// under the race detector, so the check is skipped there.
func TestVerifyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool is randomised under -race")
	}
	r, err := http.NewRequest(http.MethodPost, "http://example.com/", http.NoBody)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r.Header.Set("X-Amz-Date", "20260301T120000Z")
	r.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	body := []byte("{}")
	v := &Verifier{Region: "us-east-1", Now: func() time.Time { return now },
		Lookup: func(string) (Key, bool) { return Key{SecretAccessKey: "s"}, true }}
	req := request{
		authParts: authParts{accessKeyID: "A", date: "20260301", region: "us-east-1", service: "kinesis",
			terminator: terminator, signedHeaders: "host;x-amz-date;x-amz-target"},
		amzDate: "20260301T120000Z",
	}
	ph := payload{sum: sha256.Sum256(body)}
	sc := &scratch{}
	cr, _ := appendCanonicalRequest(nil, r, &req, &ph)
	crHash := sha256.Sum256(cr)
	key := deriveKey("s", "20260301", "us-east-1", "kinesis")
	sc.b = append(make([]byte, sha256.BlockSize), Algorithm+"\n20260301T120000Z\n20260301/us-east-1/kinesis/aws4_request\n"+hex.EncodeToString(crHash[:])...)
	sig := hmacSHA256(&key, sc.b)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=A/20260301/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature="+hex.EncodeToString(sig[:]))
	if _, err := v.Verify(r, body); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(r, body); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Verify allocates %v times per call, want 0", n)
	}
}
