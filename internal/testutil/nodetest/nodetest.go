package nodetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// installTimeout bounds one npm install.
const installTimeout = 5 * time.Minute

// Missing skips the test with the message, or fails it in CI (CI=true),
// where a test that cannot run must not pass unnoticed.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// Node returns the path of the node executable, and checks that its major
// version is at least minMajor (0 for any). Without a suitable node it
// calls Missing.
func Node(t testing.TB, minMajor int) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		Missing(t, "node not found: %v", err)
	}
	if minMajor > 0 {
		out, err := exec.Command(node, "--version").Output()
		if err != nil {
			Missing(t, "%s --version: %v", node, err)
		}
		v := strings.TrimSpace(string(out))
		major, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0])
		if err != nil || major < minMajor {
			Missing(t, "node %s found at %s; the test needs node >= %d", v, node, minMajor)
		}
	}
	return node
}

// Install makes sure the npm package name at exactly version is installed
// and returns the directory whose node_modules holds it (for NODE_PATH, see
// Run). The first call installs it with npm; later calls, in this or any
// later test process, find it in the cache. When npm is missing or the
// install fails, Install calls Missing.
func Install(t testing.TB, name, version string) string {
	t.Helper()
	spec := name + "@" + version
	done := func(dir string) bool {
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", name, "package.json"))
		if err != nil {
			return false
		}
		var pkg struct{ Version string }
		return json.Unmarshal(b, &pkg) == nil && pkg.Version == version
	}
	prepare := func(tmp string) error {
		// A package.json of its own keeps npm from adopting a parent directory's.
		return os.WriteFile(filepath.Join(tmp, "package.json"), []byte(`{"private": true}`+"\n"), 0o644)
	}
	dir, err := install(spec, prepare, done, "install", spec)
	if err != nil {
		Missing(t, "install %s: %v", spec, err)
	}
	return dir
}

// InstallLocked installs the packages that lockDir's package.json and
// package-lock.json pin, every transitive dependency included, with npm ci,
// and returns the directory whose node_modules holds them. The cache entry
// is named after a hash of the two files, so a changed lock file installs
// afresh. When npm is missing or the install fails, InstallLocked calls
// Missing.
func InstallLocked(t testing.TB, lockDir string) string {
	t.Helper()
	h := sha256.New()
	files := []string{"package.json", "package-lock.json"}
	contents := make([][]byte, len(files))
	for i, f := range files {
		b, err := os.ReadFile(filepath.Join(lockDir, f))
		if err != nil {
			t.Fatalf("nodetest: %v", err)
		}
		contents[i] = b
		_, _ = fmt.Fprintf(h, "%s %d\n", f, len(b)) // writing to a hash never fails
		h.Write(b)
	}
	key := "lock-" + filepath.Base(lockDir) + "-" + hex.EncodeToString(h.Sum(nil))[:16]
	done := func(dir string) bool {
		// npm writes its hidden lock file last.
		_, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
		return err == nil
	}
	prepare := func(tmp string) error {
		for i, f := range files {
			if err := os.WriteFile(filepath.Join(tmp, f), contents[i], 0o644); err != nil {
				return err
			}
		}
		return nil
	}
	dir, err := install(key, prepare, done, "ci")
	if err != nil {
		Missing(t, "npm ci of %s: %v", lockDir, err)
	}
	return dir
}

// install returns the cache directory named key, creating it when done
// reports it incomplete: npm runs with args in a temporary sibling that
// prepare has filled, which is then renamed into place, so that concurrent
// test processes never see half an install.
func install(key string, prepare func(tmp string) error, done func(dir string) bool, args ...string) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	root := filepath.Join(cache, "shoal-test-node")
	dir := filepath.Join(root, key)
	if done(dir) {
		return dir, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(root, "install-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // best effort: after the rename nothing is left
	if err := prepare(tmp); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	args = append(args, "--prefix", tmp, "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	if !done(tmp) {
		return "", errors.New("npm reported success but the packages are not there")
	}
	if err := os.Rename(tmp, dir); err != nil && !done(dir) {
		return "", err
	}
	return dir, nil
}

// Run runs node on script with args, with NODE_PATH set to dir's
// node_modules, until it exits or ctx ends, and returns its standard
// output. It fails the test, showing standard error, when node exits with
// an error.
func Run(ctx context.Context, t testing.TB, node, dir, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s %s: %v\nstderr:\n%s\nstdout:\n%s", filepath.Base(script), strings.Join(args, " "), err, stderr.Bytes(), stdout)
	}
	return stdout
}
