// Package awscredstest helps tests of programs that take their credentials
// from package awscreds: it cuts a test off from the machine's AWS setup,
// writes shared config files, and tells which access key signed a request.
package awscredstest

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// clearedEnv are the environment variables that give aws-sdk-go-v2's
// default chain credentials, a profile, or a way to reach the EC2 instance
// metadata service or a CA bundle.
var clearedEnv = []string{
	"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN",
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE",
	"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
	"AWS_CA_BUNDLE",
}

// Isolate points the SDK's chain, for the rest of the test, at an empty
// shared config file and an empty shared credentials file in a temporary
// directory, and clears every environment variable that would give it
// credentials or a profile, so that it finds none (HOME is left alone: the
// SDK reads no file under it once both files are named). It returns the
// two files' paths, for WriteFile. It uses t.Setenv: the test must not be
// parallel.
func Isolate(t testing.TB) (configFile, credentialsFile string) {
	t.Helper()
	dir := t.TempDir()
	configFile, credentialsFile = filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	WriteFile(t, configFile, "")
	WriteFile(t, credentialsFile, "")
	t.Setenv("AWS_CONFIG_FILE", configFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credentialsFile)
	for _, v := range clearedEnv {
		t.Setenv(v, "") // the SDK takes an empty variable as unset
	}
	return configFile, credentialsFile
}

// IsolateProcess is Isolate for a whole test binary, from TestMain, so that
// no test of the package depends on the AWS setup of the machine it runs
// on: it sets the environment with os.Setenv, for the rest of the process.
// cleanup removes the temporary directory.
//
//	func TestMain(m *testing.M) {
//		cleanup, err := awscredstest.IsolateProcess()
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		code := m.Run()
//		cleanup()
//		os.Exit(code)
//	}
func IsolateProcess() (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "awscredstest-")
	if err != nil {
		return nil, err
	}
	cleanup = func() { _ = os.RemoveAll(dir) }
	configFile, credentialsFile := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	for _, f := range []string{configFile, credentialsFile} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			cleanup()
			return nil, err
		}
	}
	set := map[string]string{"AWS_CONFIG_FILE": configFile, "AWS_SHARED_CREDENTIALS_FILE": credentialsFile}
	for _, v := range clearedEnv {
		set[v] = ""
	}
	for k, v := range set {
		if err := os.Setenv(k, v); err != nil {
			cleanup()
			return nil, err
		}
	}
	return cleanup, nil
}

// WriteFile writes text to path, failing the test on an error.
func WriteFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// AccessKey returns the access key id that signed r (from the Credential
// of its SigV4 Authorization header), or "" if it is not signed so.
func AccessKey(r *http.Request) string {
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(cred, "/")
	return key
}
