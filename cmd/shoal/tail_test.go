package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
	"github.com/shoalstream/shoal/server"
)

func TestTailFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tail"}, "--stream is required"},
		{[]string{"tail", "--stream", "s", "--from", "yesterday"}, `--from "yesterday"`},
		{[]string{"tail", "--stream", "s", "--format", "yaml"}, `unknown format "yaml"`},
		{[]string{"tail", "--stream", "s", "--poll-interval", "0s"}, "--poll-interval 0s"},
		{[]string{"tail", "--stream", "s", "extra"}, "unexpected arguments"},
		{[]string{"tail", "--nope"}, "flag provided but not defined"},
	} {
		var stderr bytes.Buffer
		err := run(t.Context(), tc.args, &bytes.Buffer{}, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	var stderr bytes.Buffer
	if err := run(t.Context(), []string{"tail", "-h"}, &bytes.Buffer{}, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "usage: shoal tail") {
		t.Errorf("-h: %v\n%s", err, stderr.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use that signals
// each write on changed (if not nil).
type lockedBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed != nil {
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTailRun runs "shoal tail" in process against a test server until
// its context is cancelled, which is a clean end (nil: exit status 0).
func TestTailRun(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_PROFILE", "")
	srv := servertest.Start(t, server.Config{})
	c := srv.Client()
	if _, err := c.CreateStream(t.Context(), &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	p, err := c.PutRecord(t.Context(), &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout, stderr := lockedBuffer{changed: make(chan struct{}, 1)}, lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"tail", "--stream", "s", "--from", "TRIM_HORIZON", "--endpoint", srv.Endpoint, "--format", "json", "--poll-interval", "10ms"}, &stdout, &stderr)
	}()
	want := `"sequenceNumber":"` + *p.SequenceNumber + `"`
	deadline := time.After(15 * time.Second)
	for !strings.Contains(stdout.String(), want) {
		select {
		case <-stdout.changed:
		case err := <-done:
			t.Fatalf("tail ended: %v\n%s", err, stderr.String())
		case <-deadline:
			t.Fatalf("record not printed; stdout %q, stderr %q", stdout.String(), stderr.String())
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tail after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("tail did not end")
	}
	if !strings.HasSuffix(stdout.String(), "\"data\":\"aGVsbG8=\"}\n") || strings.Count(stdout.String(), "\n") != 1 {
		t.Errorf("stdout %q", stdout.String())
	}
}
