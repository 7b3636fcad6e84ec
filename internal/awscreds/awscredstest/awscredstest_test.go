package awscredstest

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"testing"
)

func TestAccessKey(t *testing.T) {
	for h, want := range map[string]string{
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00": "AKIDEXAMPLE",
		"":         "",
		"Bearer x": "",
	} {
		r, err := http.NewRequest(http.MethodPost, "http://x", nil)
		if err != nil {
			t.Fatal(err)
		}
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		if got := AccessKey(r); got != want {
			t.Errorf("AccessKey(%q) = %q, want %q", h, got, want)
		}
	}
}

func TestIsolate(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSET")
	t.Setenv("AWS_PROFILE", "someone")
	cf, kf := Isolate(t)
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE"} {
		if got := os.Getenv(v); got != "" {
			t.Errorf("%s = %q after Isolate", v, got)
		}
	}
	if os.Getenv("AWS_CONFIG_FILE") != cf || os.Getenv("AWS_SHARED_CREDENTIALS_FILE") != kf {
		t.Error("the shared files are not the ones returned")
	}
	for _, f := range []string{cf, kf} {
		if b, err := os.ReadFile(f); err != nil || len(b) != 0 {
			t.Errorf("%s: %q, %v; want an empty file", f, b, err)
		}
	}
}

func TestIsolateProcess(t *testing.T) {
	// t.Setenv restores each variable after the test.
	for _, v := range append([]string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"}, clearedEnv...) {
		t.Setenv(v, os.Getenv(v))
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "set")
	cleanup, err := IsolateProcess()
	if err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv("AWS_SECRET_ACCESS_KEY"); got != "" {
		t.Errorf("AWS_SECRET_ACCESS_KEY = %q after IsolateProcess", got)
	}
	cf := os.Getenv("AWS_CONFIG_FILE")
	if b, err := os.ReadFile(cf); err != nil || len(b) != 0 {
		t.Errorf("config file %s: %q, %v; want an empty file", cf, b, err)
	}
	cleanup()
	if _, err := os.Stat(cf); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("config file left after cleanup: %v", err)
	}
}
