package server_test

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/wait"
	"github.com/shoalstream/shoal/server"
)

// isClosed reports whether ch is closed now.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestShardChangedHook: the channel of Server.ShardChanged closes at the
// shard's next append, at its closing by a reshard, at the stream's
// deletion and at Shutdown; a closed shard answers a closed channel.
func TestShardChangedHook(t *testing.T) {
	e := newEnv(t, server.Config{})
	e.createStream("hooked", 1)
	s0 := shardID(0)

	ch, err := e.srv.ShardChanged(arn("hooked"), s0)
	noErr(t, err, "ShardChanged")
	if isClosed(ch) {
		t.Fatal("closed before any change")
	}
	e.put("hooked", "k", []byte("x"))
	<-ch // the append

	ch, err = e.srv.ShardChanged(arn("hooked"), s0)
	noErr(t, err, "ShardChanged")
	mid := new(big.Int).Lsh(big.NewInt(1), 127).String()
	_, err = e.c.SplitShard(e.ctx, &kinesis.SplitShardInput{StreamName: aws.String("hooked"), ShardToSplit: aws.String(s0), NewStartingHashKey: aws.String(mid)})
	noErr(t, err, "SplitShard")
	<-ch // the closing
	ch, err = e.srv.ShardChanged(arn("hooked"), s0)
	noErr(t, err, "ShardChanged of a closed shard")
	if !isClosed(ch) {
		t.Fatal("a closed shard's channel is open")
	}

	ch, err = e.srv.ShardChanged(arn("hooked"), shardID(1))
	noErr(t, err, "ShardChanged")
	_, err = e.c.DeleteStream(e.ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("hooked")})
	noErr(t, err, "DeleteStream")
	<-ch // the deletion

	for _, tc := range []struct {
		arn, shard string
		want       error
	}{
		{arn("hooked"), s0, server.ErrResourceNotFound},
		{arn("nosuch"), s0, server.ErrResourceNotFound},
		{"arn:aws:kinesis:us-east-1:000000000000:nonsense", s0, server.ErrInvalidArgument},
	} {
		if _, err := e.srv.ShardChanged(tc.arn, tc.shard); !errors.Is(err, tc.want) {
			t.Errorf("ShardChanged(%s, %s) = %v, want %v", tc.arn, tc.shard, err, tc.want)
		}
	}
	e.createStream("other", 1)
	if _, err = e.srv.ShardChanged(arn("other"), shardID(7)); !errors.Is(err, server.ErrResourceNotFound) {
		t.Errorf("ShardChanged of a missing shard = %v", err)
	}

	// Shutdown ends every wait.
	ch, err = e.srv.ShardChanged(arn("other"), s0)
	noErr(t, err, "ShardChanged")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	noErr(t, e.srv.Shutdown(ctx), "Shutdown")
	<-ch
}

// TestShardHooksAccessors: AuthEnabled, Region, AccountID and KeyAccount.
func TestShardHooksAccessors(t *testing.T) {
	// Each server gets a call: servertest's Shutdown must find it serving.
	e := newEnv(t, server.Config{})
	_, err := e.c.ListStreams(e.ctx, &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams")
	if e.srv.AuthEnabled() || e.srv.Region() != "us-east-1" || e.srv.AccountID() != "000000000000" {
		t.Errorf("AuthEnabled %v, Region %q, AccountID %q", e.srv.AuthEnabled(), e.srv.Region(), e.srv.AccountID())
	}
	if _, ok := e.srv.KeyAccount("AKIA"); ok {
		t.Error("KeyAccount without auth")
	}
	p := principal{name: "p", account: acctB, id: "AKIAPRINCIPAL0000001", secret: "a-long-enough-secret", policies: []string{allow(`"kinesis:*"`, `"*"`)}}
	a := newAuthEnv(t, server.Config{}, p)
	_, err = a.as(p).ListStreams(a.ctx, &kinesis.ListStreamsInput{})
	noErr(t, err, "ListStreams")
	if !a.srv.AuthEnabled() {
		t.Error("AuthEnabled false with an auth configuration")
	}
	if acct, ok := a.srv.KeyAccount(p.id); !ok || acct != acctB {
		t.Errorf("KeyAccount = %q, %v", acct, ok)
	}
	if _, ok := a.srv.KeyAccount("AKIANOSUCH"); ok {
		t.Error("KeyAccount of an unknown key")
	}
}

// TestSubscriptionsHook: Server.Subscriptions lists a consumer's running
// subscriptions, by shard.
func TestSubscriptionsHook(t *testing.T) {
	e := newEnv(t, server.Config{})
	e.createStream("subs", 2)
	consumer := e.register("subs", "viewer")
	if got := e.srv.Subscriptions(consumer); len(got) != 0 {
		t.Fatalf("before subscribing: %+v", got)
	}
	s1 := e.subscribe(consumer, shardID(1), startPos(types.ShardIteratorTypeLatest))
	s0 := e.subscribe(consumer, shardID(0), startPos(types.ShardIteratorTypeLatest))
	got := e.srv.Subscriptions(consumer)
	if len(got) != 2 || got[0].ShardID != shardID(0) || got[1].ShardID != shardID(1) || got[0].Since.IsZero() {
		t.Fatalf("subscriptions %+v", got)
	}
	if other := e.srv.Subscriptions(consumer + "x"); len(other) != 0 {
		t.Errorf("another consumer's: %+v", other)
	}
	_ = s0.out.GetStream().Close()
	_ = s1.out.GetStream().Close()
	wait.Eventually(t, 10*time.Second, func() error {
		if n := len(e.srv.Subscriptions(consumer)); n != 0 {
			return fmt.Errorf("%d subscriptions still listed", n)
		}
		return nil
	})
}
