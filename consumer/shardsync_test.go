package consumer

import (
	"slices"
	"testing"

	"github.com/shoalstream/shoal/checkpoint"
)

func cp(seq string) checkpoint.Checkpoint { return checkpoint.Checkpoint{SequenceNumber: seq} }

// TestParentsPending is the child-after-parents rule.
func TestParentsPending(t *testing.T) {
	ended := cp(checkpoint.ShardEnd)
	mid := cp("49590338271490256608559692538361571095921575989136588898")
	tests := []struct {
		name    string
		parents []string
		leases  map[string]checkpoint.Checkpoint // parent leases that exist
		listed  []string                         // nil: no listing yet
		want    []string
	}{
		{name: "no parents", want: nil},
		{name: "parent lease missing", parents: []string{"p"}, want: nil},
		{name: "parent not started", parents: []string{"p"}, leases: map[string]checkpoint.Checkpoint{"p": cp(checkpoint.TrimHorizon)}, want: []string{"p"}},
		{name: "parent in progress", parents: []string{"p"}, leases: map[string]checkpoint.Checkpoint{"p": mid}, want: []string{"p"}},
		{name: "parent ended", parents: []string{"p"}, leases: map[string]checkpoint.Checkpoint{"p": ended}, want: nil},
		{name: "merge: both ended", parents: []string{"p", "q"}, leases: map[string]checkpoint.Checkpoint{"p": ended, "q": ended}, want: nil},
		{name: "merge: one not ended", parents: []string{"p", "q"}, leases: map[string]checkpoint.Checkpoint{"p": ended, "q": mid}, want: []string{"q"}},
		{name: "merge: neither ended", parents: []string{"p", "q"}, leases: map[string]checkpoint.Checkpoint{"p": mid, "q": cp(checkpoint.Latest)}, want: []string{"p", "q"}},
		{name: "merge: one missing one ended", parents: []string{"p", "q"}, leases: map[string]checkpoint.Checkpoint{"q": ended}, want: nil},
		{name: "merge: one missing one not ended", parents: []string{"p", "q"}, leases: map[string]checkpoint.Checkpoint{"q": mid}, want: []string{"q"}},
		{name: "parent trimmed away (not listed)", parents: []string{"p"}, leases: map[string]checkpoint.Checkpoint{"p": mid}, listed: []string{"c"}, want: nil},
		{name: "parent still listed, not ended", parents: []string{"p"}, leases: map[string]checkpoint.Checkpoint{"p": mid}, listed: []string{"p", "c"}, want: []string{"p"}},
		{name: "merge: one trimmed, one listed not ended", parents: []string{"p", "q"}, leases: map[string]checkpoint.Checkpoint{"p": mid, "q": mid}, listed: []string{"q", "c"}, want: []string{"q"}},
		{name: "no listing yet: unlisted is not trimmed", parents: []string{"p"}, leases: map[string]checkpoint.Checkpoint{"p": mid}, listed: nil, want: []string{"p"}},
		// A listing older than the reshard (or not yet consistent) lacks
		// the child too: the parent is not known to be gone.
		{name: "listing lacks child and parent", parents: []string{"p"}, leases: map[string]checkpoint.Checkpoint{"p": mid}, listed: []string{"x"}, want: []string{"p"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leases := map[string]checkpoint.Lease{}
			for id, c := range tc.leases {
				leases[id] = checkpoint.Lease{ShardID: id, Checkpoint: c}
			}
			var listed map[string]bool
			if tc.listed != nil {
				listed = map[string]bool{}
				for _, id := range tc.listed {
					listed[id] = true
				}
			}
			child := checkpoint.Lease{ShardID: "c", ParentShardIDs: tc.parents}
			got := parentsPending(child, leases, listed)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("pending %v, want %v", got, tc.want)
			}
			// activeLeases agrees: the child is active exactly when nothing
			// is pending.
			all := []checkpoint.Lease{child}
			for _, l := range leases {
				all = append(all, l)
			}
			active := slices.ContainsFunc(activeLeases(all, listed, false), func(l checkpoint.Lease) bool { return l.ShardID == "c" })
			if active != (len(tc.want) == 0) {
				t.Fatalf("child active %v, pending %v", active, got)
			}
			// In catch-up mode the child is active whatever its parents.
			if !slices.ContainsFunc(activeLeases(all, listed, true), func(l checkpoint.Lease) bool { return l.ShardID == "c" }) {
				t.Fatal("child not active in catch-up mode")
			}
		})
	}
}

func TestActiveLeasesSkipsEnded(t *testing.T) {
	leases := []checkpoint.Lease{
		{ShardID: "a", Checkpoint: cp(checkpoint.ShardEnd)},
		{ShardID: "b", Checkpoint: cp(checkpoint.TrimHorizon)},
	}
	for _, catchUp := range []bool{false, true} {
		got := activeLeases(leases, nil, catchUp)
		if len(got) != 1 || got[0].ShardID != "b" {
			t.Fatalf("catch-up %v: active %v", catchUp, got)
		}
	}
}

// TestPlanSync checks lease creation with parents and positions, and the
// deletion of consumed shards that are gone.
func TestPlanSync(t *testing.T) {
	// A stream that split: p0 -> c1, c2 (closed p0), and merged: c2 + p3 -> m4.
	shards := []shardInfo{
		{id: "p0", startKey: "0", endKey: "99", closed: true},
		{id: "c1", parents: []string{"p0"}, startKey: "0", endKey: "49"},
		{id: "c2", parents: []string{"p0"}, startKey: "50", endKey: "99", closed: true},
		{id: "p3", startKey: "100", endKey: "199", closed: true},
		{id: "m4", parents: []string{"c2", "p3"}, startKey: "50", endKey: "199"},
	}
	type want struct {
		cp      string
		parents []string
	}
	tests := []struct {
		name       string
		pos        InitialPosition
		leases     []checkpoint.Lease
		shards     []shardInfo
		wantCreate map[string]want
		wantRemove []string
	}{
		{
			name: "trim horizon, empty table: all, children at TRIM_HORIZON", pos: TrimHorizon, shards: shards,
			wantCreate: map[string]want{
				"p0": {checkpoint.TrimHorizon, nil}, "c1": {checkpoint.TrimHorizon, []string{"p0"}},
				"c2": {checkpoint.TrimHorizon, []string{"p0"}}, "p3": {checkpoint.TrimHorizon, nil},
				"m4": {checkpoint.TrimHorizon, []string{"c2", "p3"}},
			},
		},
		{
			name: "latest, empty table: open shards only, at LATEST", pos: Latest, shards: shards,
			wantCreate: map[string]want{"c1": {checkpoint.Latest, []string{"p0"}}, "m4": {checkpoint.Latest, []string{"c2", "p3"}}},
		},
		{
			name: "at timestamp: descendants at AT_TIMESTAMP too", pos: AtTimestamp, shards: shards,
			wantCreate: map[string]want{
				"p0": {checkpoint.AtTimestamp, nil}, "c1": {checkpoint.AtTimestamp, []string{"p0"}},
				"c2": {checkpoint.AtTimestamp, []string{"p0"}}, "p3": {checkpoint.AtTimestamp, nil},
				"m4": {checkpoint.AtTimestamp, []string{"c2", "p3"}},
			},
		},
		{
			name: "latest, parent has a lease: new children at TRIM_HORIZON", pos: Latest,
			shards: shards[:3],
			leases: []checkpoint.Lease{{ShardID: "p0", Checkpoint: cp("123")}},
			wantCreate: map[string]want{
				"c1": {checkpoint.TrimHorizon, []string{"p0"}}, "c2": {checkpoint.TrimHorizon, []string{"p0"}},
			},
		},
		{
			name: "existing leases are left alone", pos: TrimHorizon, shards: shards[:2],
			leases:     []checkpoint.Lease{{ShardID: "p0", Checkpoint: cp("5")}, {ShardID: "c1", Checkpoint: cp(checkpoint.TrimHorizon)}},
			wantCreate: map[string]want{},
		},
		{
			name: "consumed and gone: deleted; unconsumed and gone: kept", pos: TrimHorizon, shards: shards[1:2],
			leases: []checkpoint.Lease{
				{ShardID: "p0", Checkpoint: cp(checkpoint.ShardEnd)},
				{ShardID: "old", Checkpoint: cp("7")},
				{ShardID: "c1", Checkpoint: cp(checkpoint.TrimHorizon)},
			},
			wantCreate: map[string]want{},
			wantRemove: []string{"p0"},
		},
		{
			name: "consumed but listed: kept", pos: TrimHorizon, shards: shards[:2],
			leases:     []checkpoint.Lease{{ShardID: "p0", Checkpoint: cp(checkpoint.ShardEnd)}, {ShardID: "c1", Checkpoint: cp(checkpoint.TrimHorizon)}},
			wantCreate: map[string]want{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := planSync(tc.shards, tc.leases, "app", tc.pos)
			got := map[string]want{}
			index := map[string]int{}
			for i, l := range p.create {
				if l.Application != "app" {
					t.Errorf("%s: application %q", l.ShardID, l.Application)
				}
				got[l.ShardID] = want{l.Checkpoint.SequenceNumber, l.ParentShardIDs}
				index[l.ShardID] = i
			}
			if len(got) != len(tc.wantCreate) {
				t.Fatalf("created %v, want %v", got, tc.wantCreate)
			}
			for id, w := range tc.wantCreate {
				g, ok := got[id]
				if !ok || g.cp != w.cp || !slices.Equal(g.parents, w.parents) {
					t.Errorf("%s: got %+v (created %v), want %+v", id, g, ok, w)
				}
			}
			// Parents are created before their children.
			for _, l := range p.create {
				for _, par := range l.ParentShardIDs {
					if i, ok := index[par]; ok && i > index[l.ShardID] {
						t.Errorf("%s created before its parent %s", l.ShardID, par)
					}
				}
			}
			if !slices.Equal(p.remove, tc.wantRemove) {
				t.Errorf("remove %v, want %v", p.remove, tc.wantRemove)
			}
		})
	}
}

func TestPlanSyncRecordsHashRange(t *testing.T) {
	p := planSync([]shardInfo{{id: "s", startKey: "10", endKey: "20"}}, nil, "app", TrimHorizon)
	if len(p.create) != 1 || p.create[0].StartingHashKey != "10" || p.create[0].EndingHashKey != "20" {
		t.Fatalf("create %+v", p.create)
	}
}
