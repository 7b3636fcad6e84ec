package bench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/shoalstream/shoal/internal/awscreds"
	"github.com/shoalstream/shoal/internal/awscreds/awscredstest"
)

// keyRecorder is a Kinesis endpoint that refuses every call and records the
// access keys that signed them.
type keyRecorder struct {
	mu   sync.Mutex // guards keys
	keys map[string]int
}

func newKeyRecorder(t *testing.T) (*keyRecorder, string) {
	t.Helper()
	k := &keyRecorder{keys: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.keys[awscredstest.AccessKey(r)]++
		k.mu.Unlock()
		writeErr(w, http.StatusBadRequest, "AccessDeniedException", "refused by the test")
	}))
	t.Cleanup(srv.Close)
	return k, srv.URL
}

// only returns the one access key that signed every request, or fails.
func (k *keyRecorder) only(t *testing.T) string {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.keys) != 1 {
		t.Fatalf("requests signed with %v, want one access key", k.keys)
	}
	for key := range k.keys {
		return key
	}
	return ""
}

func (k *keyRecorder) requests() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, c := range k.keys {
		n += c
	}
	return n
}

// TestCredentials: every subcommand signs with the credentials of the SDK's
// default chain (keys in the environment), of -profile, or the placeholder
// when there are none; a -profile that does not exist stops it before any
// call.
func TestCredentials(t *testing.T) {
	subs := [][]string{
		{"put", "-requests", "1", "-warmup", "0", "-retries", "0"},
		{"get", "-requests", "1", "-retries", "0"},
		{"produce", "-records", "1"},
		{"fanout", "-duration", "1s", "-retries", "0"},
	}
	for _, sub := range subs {
		t.Run(sub[0], func(t *testing.T) {
			run := func(t *testing.T, extra ...string) (*keyRecorder, error) {
				t.Helper()
				k, url := newKeyRecorder(t)
				args := append(append([]string{}, sub...), "-endpoint", url)
				return k, Main(t.Context(), append(args, extra...), io.Discard)
			}
			t.Run("environment", func(t *testing.T) {
				awscredstest.Isolate(t)
				t.Setenv("AWS_ACCESS_KEY_ID", "AKIDBENCHENV")
				t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
				k, err := run(t)
				if err == nil {
					t.Fatal("Main = nil against an endpoint that refuses every call")
				}
				if got := k.only(t); got != "AKIDBENCHENV" {
					t.Fatalf("signed with %q, want the environment's key", got)
				}
			})
			t.Run("profile", func(t *testing.T) {
				_, credsFile := awscredstest.Isolate(t)
				awscredstest.WriteFile(t, credsFile, "[bench]\naws_access_key_id = AKIDBENCHPROFILE\naws_secret_access_key = secret\n")
				t.Setenv("AWS_ACCESS_KEY_ID", "AKIDBENCHENV") // -profile wins over the environment
				t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
				k, _ := run(t, "-profile", "bench")
				if got := k.only(t); got != "AKIDBENCHPROFILE" {
					t.Fatalf("signed with %q, want the profile's key", got)
				}
			})
			t.Run("none", func(t *testing.T) {
				awscredstest.Isolate(t)
				k, _ := run(t)
				if got := k.only(t); got != awscreds.PlaceholderAccessKeyID {
					t.Fatalf("signed with %q, want the placeholder", got)
				}
			})
			t.Run("missing profile", func(t *testing.T) {
				awscredstest.Isolate(t)
				k, err := run(t, "-profile", "nosuch")
				if err == nil || !strings.Contains(err.Error(), `"nosuch"`) {
					t.Fatalf("Main = %v, want an error naming the profile", err)
				}
				if n := k.requests(); n != 0 {
					t.Fatalf("%d requests made, want none", n)
				}
			})
		})
	}
}

// TestProfileFlagDocumented: every subcommand's -h lists -profile.
func TestProfileFlagDocumented(t *testing.T) {
	for _, sub := range []string{"put", "get", "produce", "fanout"} {
		var out strings.Builder
		if err := Main(t.Context(), []string{sub, "-h"}, &out); err != nil {
			t.Fatalf("%s -h: %v", sub, err)
		}
		if !strings.Contains(out.String(), "-profile") {
			t.Errorf("%s -h does not list -profile:\n%s", sub, out.String())
		}
	}
}
