package exkit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/awscreds"
	"github.com/shoalstream/shoal/internal/awscreds/awscredstest"
	"github.com/shoalstream/shoal/internal/testutil/pgtest"
)

// TestConnect checks what Connect returns with and without an endpoint, and
// which servers are Fresh.
func TestConnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	embedded, err := Connect("", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer embedded.Stop() //nolint:errcheck // checked below
	if !embedded.Embedded() || !embedded.Fresh() {
		t.Fatalf("Connect(\"\", \"\"): Embedded %v, Fresh %v; want both", embedded.Embedded(), embedded.Fresh())
	}

	// The server at an endpoint: not ours to stop.
	remote, err := Connect(embedded.Endpoint, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if remote.Embedded() || remote.Fresh() || remote.Endpoint != embedded.Endpoint {
		t.Fatalf("Connect(%q): Embedded %v, Fresh %v, Endpoint %q", embedded.Endpoint, remote.Embedded(), remote.Fresh(), remote.Endpoint)
	}
	if err := remote.Stop(); err != nil {
		t.Fatalf("Stop of a server that is not embedded: %v", err)
	}
	client := Client(remote.Endpoint, nil)
	if err := EnsureStream(ctx, client, "s", 1); err != nil {
		t.Fatalf("the server was stopped by the other's Stop: %v", err)
	}

	// An embedded server on a data directory of the caller's is not fresh.
	kept, err := Connect("", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !kept.Embedded() || kept.Fresh() {
		t.Fatalf("Connect with a data dir: Embedded %v, Fresh %v; want embedded, not fresh", kept.Embedded(), kept.Fresh())
	}
	if err := kept.Stop(); err != nil {
		t.Fatal(err)
	}

	if err := embedded.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := embedded.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("s")}); err == nil {
		t.Fatal("ListShards succeeded after Stop")
	}
}

// TestOpenLeaseStoreAndForget opens a lease table, creates leases of two
// applications, and checks that ForgetLeases deletes one application's only.
func TestOpenLeaseStoreAndForget(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, schema := pgtest.New(t)
	store, closeStore, err := OpenLeaseStore(ctx, pgtest.URL(), schema, "leases", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	for _, app := range []string{"a", "b"} {
		for i := range 3 {
			if _, err := store.CreateLease(ctx, checkpoint.Lease{Application: app, ShardID: fmt.Sprintf("shardId-%012d", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ForgetLeases(ctx, store, "a"); err != nil {
		t.Fatal(err)
	}
	for app, want := range map[string]int{"a": 0, "b": 3} {
		ls, err := store.ListLeases(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) != want {
			t.Errorf("application %s: %d leases after ForgetLeases(a), want %d", app, len(ls), want)
		}
	}

	// Nothing listens on port 1; the store retries until its ctx ends.
	bad, cancelBad := context.WithTimeout(ctx, 2*time.Second)
	defer cancelBad()
	if _, _, err := OpenLeaseStore(bad, "postgres://postgres@127.0.0.1:1/none?connect_timeout=1", schema, "leases", nil); err == nil {
		t.Error("OpenLeaseStore with an unreachable database: no error")
	}
}

// TestLockedWriterAndBuffer writes from many goroutines at once (run with
// -race) and checks that no write is lost or torn.
func TestLockedWriterAndBuffer(t *testing.T) {
	var buf Buffer
	w := NewLockedWriter(&buf)
	const writers, lines = 8, 50
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(w, "%d-%d\n", g, i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	var line []byte
	for _, c := range []byte(buf.String()) {
		if c != '\n' {
			line = append(line, c)
			continue
		}
		seen[string(line)] = true
		line = line[:0]
	}
	if len(seen) != writers*lines {
		t.Fatalf("%d distinct lines, want %d", len(seen), writers*lines)
	}
	for g := range writers {
		for i := range lines {
			if !seen[fmt.Sprintf("%d-%d", g, i)] {
				t.Fatalf("line %d-%d missing", g, i)
			}
		}
	}
}

// TestRunID checks the id's form and that two differ.
func TestRunID(t *testing.T) {
	a, b := RunID(), RunID()
	if len(a) != 8 || a == b {
		t.Fatalf("RunID() = %q, %q: want 8 hex digits, different each time", a, b)
	}
}

// TestCredentials: an embedded server gets the placeholder credentials
// without the AWS configuration being read (unless a profile is named); a
// server at an endpoint gets those of the SDK's chain, of the profile, or
// the placeholder when the chain has none.
func TestCredentials(t *testing.T) {
	embedded, err := StartServer("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer embedded.Stop() //nolint:errcheck // nothing to check on the way out
	remote := &Server{Endpoint: embedded.Endpoint}
	key := func(t *testing.T, s *Server, profile string) string {
		t.Helper()
		p, err := s.Credentials(t.Context(), profile)
		if err != nil {
			t.Fatal(err)
		}
		c, err := p.Retrieve(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return c.AccessKeyID
	}

	_, credsFile := awscredstest.Isolate(t)
	awscredstest.WriteFile(t, credsFile, "[ex]\naws_access_key_id = AKIDEXPROFILE\naws_secret_access_key = secret\n")
	if got := key(t, remote, ""); got != awscreds.PlaceholderAccessKeyID {
		t.Errorf("remote, nothing configured: %q, want the placeholder", got)
	}
	if got := key(t, remote, "ex"); got != "AKIDEXPROFILE" {
		t.Errorf("remote, profile: %q", got)
	}
	if got := key(t, embedded, "ex"); got != "AKIDEXPROFILE" {
		t.Errorf("embedded, profile: %q", got)
	}
	if _, err := remote.Credentials(t.Context(), "nosuch"); err == nil || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Errorf("remote, missing profile: %v, want an error naming it", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	if got := key(t, remote, ""); got != "AKIDEXENV" {
		t.Errorf("remote, environment: %q", got)
	}
	// A profile that does not exist, and the embedded server does not care.
	t.Setenv("AWS_PROFILE", "nosuch")
	if got := key(t, embedded, ""); got != awscreds.PlaceholderAccessKeyID {
		t.Errorf("embedded: %q, want the placeholder", got)
	}
	if _, err := remote.Credentials(t.Context(), ""); err == nil {
		t.Error("remote with AWS_PROFILE naming a missing profile: no error")
	}

	// The client signs with what it is given.
	client := Client(embedded.Endpoint, awscreds.Placeholder())
	if err := EnsureStream(t.Context(), client, "creds", 1); err != nil {
		t.Fatal(err)
	}
}
