package console

import (
	"net/http/httptest"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		host, origin string
		want         bool
	}{
		{"127.0.0.1:9567", "http://127.0.0.1:9567", true},
		{"127.0.0.1:9567", "https://127.0.0.1:9567", true}, // a TLS-terminating proxy
		{"console.example", "https://console.example", true},
		{"console.example", "https://Console.Example:443", true},
		{"console.example:443", "https://console.example", true},
		{"[::1]:9567", "http://[::1]:9567", true},
		{"127.0.0.1:9567", "http://127.0.0.1:9568", false},
		{"127.0.0.1:9567", "http://evil.example", false},
		{"console.example", "http://console.example.evil", false},
		{"127.0.0.1:9567", "null", false},
		{"127.0.0.1:9567", "file://127.0.0.1:9567", false},
		{"127.0.0.1:9567", "http://127.0.0.1:9567/path", false},
		{"127.0.0.1:9567", "http://user@127.0.0.1:9567", false},
	} {
		r := httptest.NewRequest("POST", "http://"+tc.host+"/console/api/logout", nil)
		r.Host = tc.host
		if got := sameOrigin(r, tc.origin); got != tc.want {
			t.Errorf("Host %s, Origin %s: %v, want %v", tc.host, tc.origin, got, tc.want)
		}
	}
}
