package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap/zaptest"

	"github.com/shoalstream/shoal/internal/testutil/pgtest"
)

func newTestStore(t *testing.T, cfg PGConfig) *PGStore {
	t.Helper()
	pool, schema := pgtest.New(t)
	cfg.Schema, cfg.Logger = schema, zaptest.NewLogger(t)
	s, err := NewPGStore(t.Context(), pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestLostReply makes every operation's first attempt commit and then fail
// as if the connection broke before the reply arrived. The retry must find
// its own write (by the operation's token) and report success: without
// that, a retried take or renewal would see the counter it moved itself and
// report the lease lost.
func TestLostReply(t *testing.T) {
	s := newTestStore(t, PGConfig{})
	var lost []string
	s.afterAttempt = func(op string, attempt int) error {
		if attempt == 1 && !strings.HasPrefix(op, "get lease") {
			lost = append(lost, op)
			return fmt.Errorf("reply lost: %w", io.ErrUnexpectedEOF)
		}
		return nil
	}
	ctx := t.Context()
	const app, shard = "app", "shardId-000000000000"

	created, err := s.CreateLease(ctx, Lease{Application: app, ShardID: shard})
	if err != nil || !created {
		t.Fatalf("CreateLease = %v, %v; want true", created, err)
	}
	l, err := s.GetLease(ctx, app, shard)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func(Lease) (Lease, error)
	}{
		{"take", func(l Lease) (Lease, error) { return s.TakeLease(ctx, l, "w1") }},
		{"renew", func(l Lease) (Lease, error) { return s.RenewLease(ctx, l) }},
		{"prepare", func(l Lease) (Lease, error) { return s.PrepareCheckpoint(ctx, l, Checkpoint{SequenceNumber: "5"}) }},
		{"checkpoint", func(l Lease) (Lease, error) { return s.Checkpoint(ctx, l, Checkpoint{SequenceNumber: "5"}) }},
		{"release", func(l Lease) (Lease, error) { return s.ReleaseLease(ctx, l) }},
	}
	for _, st := range steps {
		next, err := st.do(l)
		if err != nil {
			t.Fatalf("%s after a lost reply: %v", st.name, err)
		}
		if next.Counter != l.Counter+1 {
			t.Fatalf("%s: counter %d -> %d, want one step", st.name, l.Counter, next.Counter)
		}
		l = next
	}
	if err := s.CreateChildLeases(ctx, app, shard, []Lease{{ShardID: "child"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteLease(ctx, app, "child"); err != nil {
		t.Fatalf("delete after a lost reply: %v", err)
	}
	if len(lost) != len(steps)+3 {
		t.Fatalf("replies lost for %d operations (%v), want %d", len(lost), lost, len(steps)+3)
	}
	got, err := s.GetLease(ctx, app, shard)
	if err != nil || got.Counter != l.Counter || got.Checkpoint.SequenceNumber != "5" || len(got.ChildShardIDs) != 1 {
		t.Fatalf("lease %+v, %v", got, err)
	}
}

// TestLostReplyAdmin: a reset and a forced release whose first attempt
// committed but lost its reply succeed on the retry, having moved each
// lease's counter once.
func TestLostReplyAdmin(t *testing.T) {
	s := newTestStore(t, PGConfig{})
	ctx := t.Context()
	const app = "app"
	for _, id := range []string{"s0", "s1"} {
		if _, err := s.CreateLease(ctx, Lease{Application: app, ShardID: id}); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.GetLease(ctx, app, "s0")
	if err == nil {
		l, err = s.TakeLease(ctx, l, "w1")
	}
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	s.afterAttempt = func(op string, attempt int) error {
		if attempt == 1 && !strings.HasPrefix(op, "get lease") {
			lost++
			return fmt.Errorf("reply lost: %w", io.ErrUnexpectedEOF)
		}
		return nil
	}
	reset, err := s.ResetLeases(ctx, app, nil, Checkpoint{SequenceNumber: Latest})
	if err != nil || len(reset) != 2 || reset[0].Counter != l.Counter+1 || reset[1].Counter != 1 || reset[0].Checkpoint.SequenceNumber != Latest {
		t.Fatalf("reset after a lost reply = %+v, %v", reset, err)
	}
	if l, err = s.TakeLease(ctx, reset[0], "w1"); err != nil {
		t.Fatal(err)
	}
	released, err := s.ForceRelease(ctx, app, "s0")
	if err != nil || released.Owner != "" || released.Counter != l.Counter+1 {
		t.Fatalf("forced release after a lost reply = %+v, %v", released, err)
	}
	if lost != 3 { // and the take
		t.Fatalf("%d replies lost, want 3", lost)
	}
}

// TestRetryBounds: a transient error is retried until MaxRetryTime, or the
// caller's ctx, ends; anything else is returned at once.
func TestRetryBounds(t *testing.T) {
	s := newTestStore(t, PGConfig{MaxRetryTime: time.Second})
	attempts := 0
	transient := &pgconn.PgError{Code: "40001"}
	start := time.Now()
	var first time.Duration // how long the first attempt took
	s.afterAttempt = func(string, int) error {
		if attempts++; attempts == 1 {
			first = time.Since(start)
		}
		return transient
	}
	_, err := s.ListLeases(t.Context(), "app")
	if !errors.Is(err, transient) || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("after %d attempts: %v", attempts, err)
	}
	// It retried, unless the first attempt alone used up most of
	// MaxRetryTime (a stalled machine; the first back-off is at most
	// 37.5ms). Judged from how long the attempt took, not from a guess of
	// how fast the database answers.
	if attempts < 2 && first < s.cfg.MaxRetryTime/2 {
		t.Fatalf("gave up after %d attempt, the first took %v of MaxRetryTime %v: %v", attempts, first, s.cfg.MaxRetryTime, err)
	}

	// The caller's ctx ends during the back-off after the third attempt.
	s.cfg.MaxRetryTime = time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	attempts = 0
	s.afterAttempt = func(string, int) error {
		if attempts++; attempts == 3 {
			cancel()
		}
		return transient
	}
	_, err = s.ListLeases(ctx, "app")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, transient) || attempts != 3 {
		t.Fatalf("ctx cancelled after 3 attempts: %d attempts, %v", attempts, err)
	}

	attempts = 0
	s.afterAttempt = func(string, int) error { attempts++; return &pgconn.PgError{Code: "42501"} } // insufficient_privilege
	if _, err = s.ListLeases(t.Context(), "app"); err == nil || attempts != 1 {
		t.Fatalf("permanent error: %d attempts, %v", attempts, err)
	}
}

func TestRetryable(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{context.Canceled, false},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), false},
		{ctx.Err(), false},
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "40P01"}, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "53300"}, true},
		{&pgconn.PgError{Code: "23505"}, false}, // unique_violation
		{&pgconn.PgError{Code: "42P01"}, false}, // undefined_table
		{&pgconn.PgError{Code: "28P01"}, false}, // invalid_password
		{io.EOF, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{net.ErrClosed, true},
		{errConflict, true},
		{ErrLeaseLost, false},
		{ErrNotFound, false},
		{errors.New("something else"), false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
