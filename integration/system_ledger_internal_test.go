package integration

import (
	"fmt"
	"strings"
	"testing"
)

// The checker of TestSystem must catch what it claims to: each case feeds
// it worker output with one violation (or none) and looks for the problem.

func seqN(n int) string { return fmt.Sprintf("%039d", n) }

// ledgerOf reads the outputs of worker processes; each output is lines of
// "<kind> <ts> <fields...>", and killed lists the labels to treat as
// SIGKILLed.
func ledgerOf(outputs map[string]string, killed ...string) *sysLedger {
	l := newSysLedger()
	for label, out := range outputs {
		ready := make(chan struct{})
		isKilled := false
		for _, k := range killed {
			isKilled = isKilled || k == label
		}
		l.readWorker(label, strings.NewReader(out), ready, func() bool { return isKilled })
	}
	return l
}

func TestSystemLedgerCheck(t *testing.T) {
	s := seqN
	ack := func(shard string, n int, sub int64) sysAck { return sysAck{at: shardPos{shard, pos{s(n), sub}}} }
	// w0 processes k:0..2 on shard-0, checkpoints k:0 only, and is killed;
	// w1 takes over from that checkpoint and processes k:1 and k:2 again.
	clean := map[string]string{
		"w0#1": "READY 1\nI 10 shard-0 p1 TRIM_HORIZON 0\nR 11 shard-0 p1 " + s(1) + " 0 k:0\nC 12 shard-0 p1 " + s(1) + " 0\n" +
			"R 13 shard-0 p1 " + s(2) + " 0 k:1\nR 13 shard-0 p1 " + s(3) + " 0 k:2\n",
		"w1#1": "READY 2\nI 20 shard-0 p1 " + s(1) + " 0\nR 21 shard-0 p1 " + s(2) + " 0 k:1\nR 21 shard-0 p1 " + s(3) + " 0 k:2\nC 22 shard-0 p1 " + s(3) + " 0\nS 23 shard-0 p1 " + s(3) + " 0\nEXIT 24 ok\n",
	}
	cleanAcks := map[recKey]sysAck{{"k", 0}: ack("shard-0", 1, 0), {"k", 1}: ack("shard-0", 2, 0), {"k", 2}: ack("shard-0", 3, 0)}
	puts := map[string]int{"k": 3}

	t.Run("clean", func(t *testing.T) {
		rep, problems := ledgerOf(clean, "w0#1").check(cleanAcks, puts, []sysEvent{{ts: 15, what: "kill w0"}})
		if len(problems) != 0 {
			t.Fatalf("problems in a clean run: %q", problems)
		}
		if rep.redeliveries != 2 || rep.redeliveryCause["killed"] != 2 || rep.redeliveryEvent["kill w0"] != 2 {
			t.Errorf("redeliveries %d by cause %v by event %v, want 2 after the kill", rep.redeliveries, rep.redeliveryCause, rep.redeliveryEvent)
		}
		if rep.uniqueRecords != 3 || rep.deliveries != 5 || rep.tenures != 2 || rep.tenureEnds["killed"] != 1 || rep.tenureEnds["shutdown"] != 1 {
			t.Errorf("report %+v", rep)
		}
	})

	cases := []struct {
		name    string
		outputs map[string]string
		killed  []string
		acks    map[recKey]sysAck
		want    string
	}{{
		name:    "acknowledged record never processed",
		outputs: clean, killed: []string{"w0#1"},
		acks: map[recKey]sysAck{{"k", 0}: ack("shard-0", 1, 0), {"k", 1}: ack("shard-0", 2, 0), {"k", 2}: ack("shard-0", 3, 0), {"k", 3}: ack("shard-0", 4, 0)},
		want: "acknowledged record never processed: k:3",
	}, {
		name:    "processed at another position than acknowledged",
		outputs: clean, killed: []string{"w0#1"},
		acks: map[recKey]sysAck{{"k", 0}: ack("shard-0", 1, 1)},
		want: "not processed at its acknowledged position",
	}, {
		name: "never put",
		outputs: map[string]string{"w0#1": "I 10 shard-0 p1 TRIM_HORIZON 0\nR 11 shard-0 p1 " + s(1) + " 0 k:0\nR 11 shard-0 p1 " + s(2) + " 0 k:1\n" +
			"R 11 shard-0 p1 " + s(3) + " 0 k:2\nR 11 shard-0 p1 " + s(4) + " 0 k:3\n"},
		acks: cleanAcks,
		want: "record processed but never put: k:3",
	}, {
		name:    "redelivered by the same tenure",
		outputs: map[string]string{"w0#1": "I 10 shard-0 p1 TRIM_HORIZON 0\nR 11 shard-0 p1 " + s(1) + " 0 k:0\nR 12 shard-0 p1 " + s(1) + " 0 k:0\n"},
		acks:    map[recKey]sysAck{{"k", 0}: ack("shard-0", 1, 0)},
		want:    "delivered twice by one tenure",
	}, {
		name:    "out of shard order",
		outputs: map[string]string{"w0#1": "I 10 shard-0 p1 TRIM_HORIZON 0\nR 11 shard-0 p1 " + s(2) + " 0 k:1\nR 12 shard-0 p1 " + s(1) + " 0 k:0\n"},
		want:    "tenure delivered out of order: w0#1 on shard-0: " + s(1) + "/0 (k:0) after " + s(2),
	}, {
		name:    "key order broken in the stream",
		outputs: map[string]string{"w0#1": "I 10 shard-0 p1 TRIM_HORIZON 0\nR 11 shard-0 p1 " + s(1) + " 0 k:1\nR 12 shard-0 p1 " + s(2) + " 0 k:0\n"},
		want:    "per-key order broken: key k: counter 1 stored at " + s(1),
	}, {
		name: "checkpoint went back",
		outputs: map[string]string{
			"w0#1": "I 10 shard-0 p1 TRIM_HORIZON 0\nR 11 shard-0 p1 " + s(1) + " 0 k:0\nR 11 shard-0 p1 " + s(2) + " 0 k:1\nC 12 shard-0 p1 " + s(2) + " 0\nL 13 shard-0 p1\n",
			"w1#1": "I 20 shard-0 p1 " + s(1) + " 0\nR 21 shard-0 p1 " + s(2) + " 0 k:1\n",
		},
		want: "checkpoint went back: w1#1 took shard-0",
	}, {
		name: "redelivery after a graceful handoff",
		outputs: map[string]string{
			"w0#1": "I 10 shard-0 p1 TRIM_HORIZON 0\nR 11 shard-0 p1 " + s(1) + " 0 k:0\nS 12 shard-0 p1 TRIM_HORIZON 0\n",
			"w1#1": "I 20 shard-0 p1 TRIM_HORIZON 0\nR 21 shard-0 p1 " + s(1) + " 0 k:0\n",
		},
		want: `after w0#1's tenure ended by "shutdown"`,
	}, {
		name:    "record outside a tenure",
		outputs: map[string]string{"w0#1": "R 11 shard-0 p1 " + s(1) + " 0 k:0\n"},
		want:    "unaccountable worker output: w0#1: R line of shard-0 processor p1 outside a tenure",
	}, {
		name:    "data the test did not put",
		outputs: map[string]string{"w0#1": "I 10 shard-0 p1 TRIM_HORIZON 0\nR 11 shard-0 p1 " + s(1) + " 0 garbage\n"},
		want:    `record data "garbage" is no record the test put`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, problems := ledgerOf(tc.outputs, tc.killed...).check(tc.acks, puts, nil)
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Errorf("no problem containing %q among %q", tc.want, problems)
		})
	}
}

// A line cut by a SIGKILL (no newline) is not a record processed.
func TestSystemLedgerTornLine(t *testing.T) {
	l := ledgerOf(map[string]string{"w0#1": "I 10 shard-0 p1 TRIM_HORIZON 0\nR 11 shard-0 p1 " + seqN(1) + " 0 k:0\nR 12 shard-0 p1 " + seqN(2) + " 0 k:"}, "w0#1")
	if n := l.uniqueRecords(); n != 1 {
		t.Fatalf("%d records, want 1 (the torn line is not one)", n)
	}
	_, problems := l.check(map[recKey]sysAck{{"k", 0}: {at: shardPos{"shard-0", pos{seqN(1), 0}}}}, map[string]int{"k": 2}, nil)
	if len(problems) != 0 {
		t.Fatalf("problems: %q", problems)
	}
}

// A worker that takes a shard back may initialize its new processor before
// the old one's LeaseLost: the lines of the two are told apart.
func TestSystemLedgerProcessorsOverlap(t *testing.T) {
	s := seqN
	out := "I 10 shard-0 p1 TRIM_HORIZON 0\nR 11 shard-0 p1 " + s(1) + " 0 k:0\n" +
		"I 20 shard-0 p2 TRIM_HORIZON 0\nL 21 shard-0 p1\nR 22 shard-0 p2 " + s(1) + " 0 k:0\nR 22 shard-0 p2 " + s(2) + " 0 k:1\nC 23 shard-0 p2 " + s(2) + " 0\n"
	l := ledgerOf(map[string]string{"w0#1": out})
	acks := map[recKey]sysAck{{"k", 0}: {at: shardPos{"shard-0", pos{s(1), 0}}}, {"k", 1}: {at: shardPos{"shard-0", pos{s(2), 0}}}}
	rep, problems := l.check(acks, map[string]int{"k": 2}, nil)
	if len(problems) != 0 {
		t.Fatalf("problems: %q", problems)
	}
	if rep.tenures != 2 || rep.tenureEnds["lost"] != 1 || rep.redeliveries != 1 || rep.redeliveryCause["overlap (lost)"] != 1 {
		t.Errorf("report %+v, want two tenures, the first lost after the second started, and one redelivery", rep)
	}
}
