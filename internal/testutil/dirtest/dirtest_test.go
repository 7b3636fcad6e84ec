package dirtest_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/shoalstream/shoal/internal/testutil/dirtest"
)

// Copy a small tree and read a file back from the copy.
func ExampleCopy() {
	src, _ := os.MkdirTemp("", "src")
	dst, _ := os.MkdirTemp("", "dst")
	defer func() { _ = os.RemoveAll(src) }()
	defer func() { _ = os.RemoveAll(dst) }()
	_ = os.MkdirAll(filepath.Join(src, "a", "b"), 0o755)
	_ = os.WriteFile(filepath.Join(src, "a", "b", "f.log"), []byte("records"), 0o644)
	if err := dirtest.Copy(src, dst); err != nil {
		fmt.Println(err)
	}
	got, err := os.ReadFile(filepath.Join(dst, "a", "b", "f.log"))
	fmt.Println(string(got), err)
	// Output: records <nil>
}
