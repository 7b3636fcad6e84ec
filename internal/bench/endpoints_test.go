package bench

import (
	"slices"
	"testing"
)

func TestEndpoints(t *testing.T) {
	for in, want := range map[string][]string{
		"http://a:1":              {"http://a:1"},
		"http://a:1, http://b:2,": {"http://a:1", "http://b:2"},
	} {
		if got := endpoints(in); !slices.Equal(got, want) {
			t.Errorf("endpoints(%q) = %q, want %q", in, got, want)
		}
	}
}
