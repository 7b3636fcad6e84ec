package awscreds

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/shoalstream/shoal/internal/awscreds/awscredstest"
)

// isolate is awscredstest.Isolate.
func isolate(t *testing.T) (configFile, credsFile string) {
	t.Helper()
	return awscredstest.Isolate(t)
}

func write(t *testing.T, path, text string) {
	t.Helper()
	awscredstest.WriteFile(t, path, text)
}

// sharedFiles writes a config file and a credentials file with a default
// profile and a "dev" profile, whose keys tell them apart, and a "regiononly"
// profile without credentials.
func sharedFiles(t *testing.T, configFile, credsFile string) {
	t.Helper()
	write(t, configFile, "[default]\nregion = eu-west-1\n\n[profile dev]\nregion = eu-west-2\n\n[profile regiononly]\nregion = eu-west-3\n")
	write(t, credsFile, "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = secret-default\n\n"+
		"[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = secret-dev\naws_session_token = token-dev\n")
}

func retrieve(t *testing.T, p aws.CredentialsProvider) aws.Credentials {
	t.Helper()
	c, err := p.Retrieve(t.Context())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	return c
}

func wantKeys(t *testing.T, p aws.CredentialsProvider, id, secret, token string) {
	t.Helper()
	if IsPlaceholder(p) {
		t.Fatalf("got the placeholder, want %s", id)
	}
	c := retrieve(t, p)
	if c.AccessKeyID != id || c.SecretAccessKey != secret || c.SessionToken != token {
		t.Fatalf("credentials = %q/%q/%q, want %q/%q/%q", c.AccessKeyID, c.SecretAccessKey, c.SessionToken, id, secret, token)
	}
}

// TestEnvironmentKeys: keys in the environment are used, over the default
// profile of the files.
func TestEnvironmentKeys(t *testing.T) {
	cf, kf := isolate(t)
	sharedFiles(t, cf, kf)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-env")
	t.Setenv("AWS_SESSION_TOKEN", "token-env")
	p, err := Provider(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	wantKeys(t, p, "AKIDENV", "secret-env", "token-env")
}

// TestDefaultProfile: without keys in the environment, the files' default
// profile is used.
func TestDefaultProfile(t *testing.T) {
	cf, kf := isolate(t)
	sharedFiles(t, cf, kf)
	p, err := Provider(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	wantKeys(t, p, "AKIDDEFAULT", "secret-default", "")
}

// TestNamedProfile: a profile named by the argument is used, even over keys
// in the environment (as the AWS CLI's --profile is); one named by
// AWS_PROFILE is used when the argument is empty.
func TestNamedProfile(t *testing.T) {
	t.Run("argument", func(t *testing.T) {
		cf, kf := isolate(t)
		sharedFiles(t, cf, kf)
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-env")
		p, err := Provider(t.Context(), "dev")
		if err != nil {
			t.Fatal(err)
		}
		wantKeys(t, p, "AKIDDEV", "secret-dev", "token-dev")
	})
	t.Run("AWS_PROFILE", func(t *testing.T) {
		cf, kf := isolate(t)
		sharedFiles(t, cf, kf)
		t.Setenv("AWS_PROFILE", "dev")
		p, err := Provider(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		wantKeys(t, p, "AKIDDEV", "secret-dev", "token-dev")
	})
	t.Run("config file", func(t *testing.T) {
		// Keys may live in the config file too.
		cf, _ := isolate(t)
		write(t, cf, "[profile cfgonly]\naws_access_key_id = AKIDCFG\naws_secret_access_key = secret-cfg\n")
		p, err := Provider(t.Context(), "cfgonly")
		if err != nil {
			t.Fatal(err)
		}
		wantKeys(t, p, "AKIDCFG", "secret-cfg", "")
	})
}

// TestMissingProfile: a profile that is asked for and does not exist is an
// error naming it, never the placeholder; so is one without credentials.
func TestMissingProfile(t *testing.T) {
	for _, tc := range []struct {
		name, arg, env, want string
	}{
		{"argument", "nosuch", "", `"nosuch"`},
		{"AWS_PROFILE", "", "nosuch", `"nosuch"`},
		{"no files", "nosuch", "", `"nosuch"`},
		{"without credentials", "regiononly", "", `"regiononly" has no credentials`},
		{"AWS_PROFILE without credentials", "", "regiononly", `"regiononly" has no credentials`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cf, kf := isolate(t)
			if tc.name == "no files" {
				t.Setenv("AWS_CONFIG_FILE", cf+".missing")
				t.Setenv("AWS_SHARED_CREDENTIALS_FILE", kf+".missing")
			} else {
				sharedFiles(t, cf, kf)
			}
			t.Setenv("AWS_PROFILE", tc.env)
			p, err := Provider(t.Context(), tc.arg)
			if err == nil {
				t.Fatalf("Provider = %T, want an error", p)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %s", err, tc.want)
			}
			if tc.name != "without credentials" && tc.name != "AWS_PROFILE without credentials" {
				var notExist config.SharedConfigProfileNotExistError
				if !errors.As(err, &notExist) {
					t.Errorf("error %q does not wrap SharedConfigProfileNotExistError", err)
				}
			}
		})
	}
}

// fakeIMDS is an EC2 instance metadata service that hands out role
// credentials, or fails when broken; it counts the requests it gets.
func fakeIMDS(t *testing.T, broken bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			_, _ = fmt.Fprint(w, "imds-token")
		case broken:
			http.Error(w, "no role", http.StatusNotFound)
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/":
			_, _ = fmt.Fprint(w, "test-role\n")
		case r.URL.Path == "/latest/meta-data/iam/security-credentials/test-role":
			_, _ = fmt.Fprintf(w, `{"Code":"Success","AccessKeyId":"AKIDIMDS","SecretAccessKey":"secret-imds","Token":"token-imds","Expiration":%q}`,
				time.Now().Add(6*time.Hour).UTC().Format(time.RFC3339))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestNoCredentialsPlaceholder: with nothing configured anywhere, the
// placeholder comes back, and the instance metadata service is not asked.
func TestNoCredentialsPlaceholder(t *testing.T) {
	isolate(t)
	imds, hits := fakeIMDS(t, false)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	p, err := Provider(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !IsPlaceholder(p) {
		t.Fatalf("Provider = %T, want the placeholder", p)
	}
	c := retrieve(t, p)
	if c.AccessKeyID != PlaceholderAccessKeyID || c.SecretAccessKey != PlaceholderSecretAccessKey || c.SessionToken != "" || c.CanExpire {
		t.Fatalf("placeholder credentials = %+v", c)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the instance metadata service got %d requests, want none", n)
	}
	// Empty files: a default profile with nothing in it is the same.
	cf, _ := isolate(t)
	write(t, cf, "[default]\nregion = eu-west-1\n")
	if p, err := Provider(t.Context(), ""); err != nil || !IsPlaceholder(p) {
		t.Fatalf("with a default profile without keys: Provider = %T, %v; want the placeholder", p, err)
	}
}

// TestIMDSOptIn: AWS_EC2_METADATA_DISABLED=false lets the chain ask the
// instance metadata service; its credentials are used, and its failure is
// an error rather than the placeholder. AWS_EC2_METADATA_DISABLED=true
// leaves it off, as unset does.
func TestIMDSOptIn(t *testing.T) {
	t.Run("role", func(t *testing.T) {
		isolate(t)
		imds, hits := fakeIMDS(t, false)
		t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
		t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
		p, err := Provider(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		wantKeys(t, p, "AKIDIMDS", "secret-imds", "token-imds")
		if hits.Load() == 0 {
			t.Fatal("the instance metadata service was not asked")
		}
	})
	t.Run("no role", func(t *testing.T) {
		isolate(t)
		imds, _ := fakeIMDS(t, true)
		t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
		t.Setenv("AWS_EC2_METADATA_DISABLED", "FALSE")
		if p, err := Provider(t.Context(), ""); err == nil {
			t.Fatalf("Provider = %T, want an error", p)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		isolate(t)
		imds, hits := fakeIMDS(t, false)
		t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		if p, err := Provider(t.Context(), ""); err != nil || !IsPlaceholder(p) {
			t.Fatalf("Provider = %T, %v; want the placeholder", p, err)
		}
		if n := hits.Load(); n != 0 {
			t.Fatalf("the instance metadata service got %d requests, want none", n)
		}
	})
}

// TestFailingSourceIsAnError: a configured source that cannot give
// credentials is reported, not replaced by the placeholder.
func TestFailingSourceIsAnError(t *testing.T) {
	cf, _ := isolate(t)
	write(t, cf, "[default]\ncredential_process = "+filepath.Join(t.TempDir(), "no-such-program")+"\n")
	p, err := Provider(t.Context(), "")
	if err == nil {
		t.Fatalf("Provider = %T, want an error", p)
	}
	if !strings.Contains(err.Error(), "retrieve AWS credentials") {
		t.Errorf("error %q", err)
	}
}

// TestProviderHonoursContext: a cancelled context stops the load.
//
// The metadata service holds its answer until the test ends: the SDK's
// credentials cache runs a retrieval detached from the caller's context
// and selects between its result and the context, so a fast answer would
// race the cancellation (the test failed once in a CI run that way).
func TestProviderHonoursContext(t *testing.T) {
	isolate(t)
	release := make(chan struct{})
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "no answer", http.StatusServiceUnavailable)
	}))
	t.Cleanup(imds.Close)
	t.Cleanup(func() { close(release) }) // runs before imds.Close
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if p, err := Provider(ctx, ""); err == nil {
		t.Fatalf("Provider = %T with a cancelled context, want an error", p)
	}
}

// TestIsPlaceholder: IsPlaceholder sees through a credentials cache and
// tells other providers apart.
func TestIsPlaceholder(t *testing.T) {
	if !IsPlaceholder(Placeholder()) || !IsPlaceholder(aws.NewCredentialsCache(Placeholder())) {
		t.Error("IsPlaceholder(Placeholder()) = false")
	}
	if IsPlaceholder(nil) || IsPlaceholder(credentials.NewStaticCredentialsProvider(PlaceholderAccessKeyID, PlaceholderSecretAccessKey, "")) {
		t.Error("IsPlaceholder of another provider = true")
	}
}
