package natstest_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoalstream/shoal/internal/natstest"
)

// A 3-node cluster stores an R3 stream, survives a killed node and takes
// the node back.
func TestCluster(t *testing.T) {
	c := natstest.StartCluster(t, 3, natstest.Options{})
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Replicas: 3, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t", []byte("one")); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := c.NodeByName(info.Cluster.Leader)
	if leader < 0 {
		t.Fatalf("leader %q is not a node of the cluster", info.Cluster.Leader)
	}
	c.Kill(leader)
	// The two others elect a leader and take writes; the publish retries
	// through the election.
	var ack *jetstream.PubAck
	for attempt := 0; ; attempt++ {
		if ack, err = js.Publish(ctx, "t", []byte("two"), jetstream.WithRetryAttempts(50), jetstream.WithRetryWait(100*time.Millisecond)); err == nil {
			break
		}
		if attempt == 20 {
			t.Fatalf("publish after killing the leader: %v", err)
		}
	}
	if ack.Sequence != 2 {
		t.Fatalf("second message got sequence %d, want 2", ack.Sequence)
	}
	c.Start(leader)
	c.WaitReady(time.Minute)
	m, err := s.GetMsg(ctx, 1)
	if err != nil || string(m.Data) != "one" {
		t.Fatalf("message 1 = %v, %v", m, err)
	}
}
