package randid_test

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/shoalstream/shoal/internal/randid"
)

var uuid4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		u := randid.UUID()
		if !uuid4.MatchString(u) {
			t.Fatalf("%q is not a version 4 UUID", u)
		}
		if seen[u] {
			t.Fatalf("%q twice", u)
		}
		seen[u] = true
	}
}

func ExampleUUID() {
	fmt.Println(len(randid.UUID()))
	// Output: 36
}
