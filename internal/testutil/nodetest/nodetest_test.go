package nodetest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRun runs a script that prints its arguments and the NODE_PATH it
// was given.
func TestRun(t *testing.T) {
	node := Node(t, 0)
	dir := t.TempDir()
	script := filepath.Join(dir, "echo.js")
	src := `process.stdout.write(JSON.stringify({args: process.argv.slice(2), path: process.env.NODE_PATH}));`
	if err := os.WriteFile(script, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := string(Run(ctx, t, node, "/opt/mods", script, "a b", "ü"))
	want := `{"args":["a b","ü"],"path":"/opt/mods/node_modules"}`
	if got != want {
		t.Errorf("script printed %s, want %s", got, want)
	}
}

// TestNodeTooOld checks that a node older than required skips the test
// outside CI.
func TestNodeTooOld(t *testing.T) {
	Node(t, 0) // skip here without node
	t.Setenv("CI", "false")
	var sub *testing.T
	reached := false
	t.Run("needs node 1000", func(t *testing.T) {
		sub = t
		Node(t, 1000)
		reached = true
	})
	if reached || !sub.Skipped() {
		t.Fatalf("Node(t, 1000) returned (%v) or did not skip (skipped: %v)", reached, sub.Skipped())
	}
}
