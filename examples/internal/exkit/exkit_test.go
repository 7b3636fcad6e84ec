package exkit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/checkpoint"
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
	client := Client(remote.Endpoint)
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
