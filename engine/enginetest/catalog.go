package enginetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/shoalstream/shoal/engine"
)

var catalogTests = []test{
	{name: "Empty", fn: testCatalogEmpty},
	{name: "PutStreamCreate", fn: testPutStreamCreate},
	{name: "PutStreamUpdate", fn: testPutStreamUpdate},
	{name: "PutStreamConflict", fn: testPutStreamConflict},
	{name: "StreamsList", fn: testStreamsList},
	{name: "DeepCopies", fn: testCatalogDeepCopies},
	{name: "DeleteStream", fn: testDeleteStream},
	{name: "Accounts", fn: testCatalogAccounts},
	{name: "Account", fn: testAccount},
	{name: "RacingCreate", fn: testRacingCreate},
	{name: "RacingUpdates", fn: testRacingUpdates},
	{name: "RacingAccountUpdates", fn: testRacingAccountUpdates},
}

// sampleStream returns a stream record with every field set.
func sampleStream(name, id string) engine.StreamMeta {
	warm := int32(4)
	return engine.StreamMeta{
		Name: name, ID: id, Created: 1_700_000_000_123, Status: "ACTIVE", Mode: "PROVISIONED",
		RetentionHours: 24, RetentionBytes: 64 << 20, Tags: map[string]string{"team": "shoal", "env": "test"},
		MaxRecordKiB: 1024, WarmMiBps: &warm, Distribution: "uniform",
		Metrics: []string{"IncomingBytes", "IncomingRecords"}, TrimFloorMs: 1_699_000_000_000,
		NextIndex: 3, ScaleTimes: []int64{1_700_000_000_500},
		Policy:     `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kinesis:GetRecords","Resource":"*"}]}`,
		Encryption: "KMS", KeyID: "alias/aws/kinesis", EncryptionChanges: []int64{1_700_000_000_700},
		Shards: []engine.ShardMeta{
			{Index: 0, Start: "0", End: "170141183460469231731687303715884105727", CreatedMs: 1_700_000_000_123,
				EndSeq: "49590338271490256608559692538361571095921575989136588802", ClosedMs: 1_700_000_001_000},
			{Index: 1, Parent: "shardId-000000000000", Start: "0", End: "85070591730234615865843651857942052863", CreatedMs: 1_700_000_001_000,
				DataKeys: []engine.DataKey{{Wrapped: []byte{1, 2, 3, 0, 255}}, {Wrapped: []byte("wrapped-2"), Current: true}}},
			{Index: 2, Parent: "shardId-000000000000", AdjParent: "shardId-000000000009", Start: "85070591730234615865843651857942052864",
				End: "170141183460469231731687303715884105727", CreatedMs: 1_700_000_001_000},
		},
		Consumers: []engine.ConsumerMeta{
			{Name: "c1", Created: 1_700_000_000_999, Status: "ACTIVE", Tags: map[string]string{"k": "v"}, Policy: `{"Statement":[]}`},
			{Name: "c2", Created: 1_700_000_001_999, Status: "CREATING"},
		},
	}
}

// checkStream fails the test unless name's record is want at version v.
func checkStream(t *testing.T, x *env, want engine.StreamMeta, v uint64) {
	t.Helper()
	got, gv, err := x.e.Catalog().Stream(x.ctx, want.Key())
	if err != nil {
		t.Fatalf("Stream(%q): %v", want.Key(), err)
	}
	if gv != v {
		t.Fatalf("Stream(%q) version = %d, want %d", want.Key(), gv, v)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Stream(%q) =\n%+v\nwant\n%+v", want.Key(), got, want)
	}
}

// put calls PutStream, failing the test on error.
func (x *env) put(m engine.StreamMeta, expect uint64) uint64 {
	x.t.Helper()
	v, err := x.e.Catalog().PutStream(x.ctx, m, expect)
	if err != nil {
		x.t.Fatalf("PutStream(%q, %d): %v", m.Name, expect, err)
	}
	if v == 0 || v == expect {
		x.t.Fatalf("PutStream(%q, %d) returned version %d", m.Name, expect, v)
	}
	return v
}

// A new engine's catalog holds no streams and a zero account.
func testCatalogEmpty(t *testing.T, x *env) {
	c := x.e.Catalog()
	ss, err := c.Streams(x.ctx)
	if err != nil || len(ss) != 0 {
		t.Fatalf("Streams of a new catalog = %v, %v; want none", ss, err)
	}
	_, _, err = c.Stream(x.ctx, "missing")
	wantErr(t, "Stream of a missing name", err, engine.ErrNotFound)
	a, v, err := c.Account(x.ctx)
	if err != nil || v != 0 || a != (engine.AccountMeta{}) {
		t.Fatalf("Account of a new catalog = %+v, %d, %v; want zero", a, v, err)
	}
}

// PutStream with expect 0 creates a record, once.
func testPutStreamCreate(t *testing.T, x *env) {
	m := sampleStream("s1", "id-1")
	v := x.put(m, 0)
	checkStream(t, x, m, v)
	_, err := x.e.Catalog().PutStream(x.ctx, sampleStream("s1", "id-2"), 0)
	wantErr(t, "PutStream(expect 0) of an existing name", err, engine.ErrExists)
	checkStream(t, x, m, v)
	// A minimal record round-trips too.
	minimal := engine.StreamMeta{Name: "s2"}
	checkStream(t, x, minimal, x.put(minimal, 0))
}

// PutStream with the stored version replaces the record and returns a new
// version, never one the record had before.
func testPutStreamUpdate(t *testing.T, x *env) {
	m := sampleStream("s", "id")
	v := x.put(m, 0)
	seen := []uint64{v}
	for i := range 5 {
		m.Status = fmt.Sprint("STATUS-", i)
		m.Shards = append(m.Shards, engine.ShardMeta{Index: uint32(10 + i), Start: "1", End: "2"})
		delete(m.Tags, "env")
		m.Tags[fmt.Sprint("t", i)] = "x"
		v = x.put(m, v)
		if slices.Contains(seen, v) {
			t.Fatalf("update %d returned version %d, which the record had before (%v)", i, v, seen)
		}
		seen = append(seen, v)
		checkStream(t, x, m, v)
	}
}

// PutStream with a stale version, or expect != 0 for a missing name, fails
// with ErrConflict and changes nothing.
func testPutStreamConflict(t *testing.T, x *env) {
	m := sampleStream("s", "id")
	v1 := x.put(m, 0)
	m2 := m.Clone()
	m2.Status = "UPDATING"
	v2 := x.put(m2, v1)
	stale := m.Clone()
	stale.Status = "DELETING"
	for _, expect := range []uint64{v1, v2 + 1000} {
		_, err := x.e.Catalog().PutStream(x.ctx, stale, expect)
		wantErr(t, fmt.Sprintf("PutStream with version %d, stored %d", expect, v2), err, engine.ErrConflict)
	}
	checkStream(t, x, m2, v2)
	for _, expect := range []uint64{1, v1, v2} {
		_, err := x.e.Catalog().PutStream(x.ctx, sampleStream("missing", "id"), expect)
		wantErr(t, fmt.Sprintf("PutStream(expect %d) of a missing name", expect), err, engine.ErrConflict)
	}
	if _, _, err := x.e.Catalog().Stream(x.ctx, "missing"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("a failed PutStream created the record: Stream = %v", err)
	}
}

// Streams lists every record with its version.
func testStreamsList(t *testing.T, x *env) {
	want := map[string]engine.VersionedStream{}
	for i := range 5 {
		m := sampleStream(fmt.Sprint("s", i), fmt.Sprint("id", i))
		v := x.put(m, 0)
		if i%2 == 0 {
			m.Status = "UPDATING"
			v = x.put(m, v)
		}
		want[m.Name] = engine.VersionedStream{Meta: m, Version: v}
	}
	checkStreams(t, x, want)
}

// checkStreams fails the test unless Streams returns exactly want.
func checkStreams(t *testing.T, x *env, want map[string]engine.VersionedStream) {
	t.Helper()
	ss, err := x.e.Catalog().Streams(x.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != len(want) {
		t.Fatalf("Streams returned %d records, want %d", len(ss), len(want))
	}
	for _, s := range ss {
		w, ok := want[s.Meta.Name]
		if !ok || !reflect.DeepEqual(s, w) {
			t.Fatalf("Streams returned\n%+v\nwant\n%+v", s, w)
		}
	}
}

// The catalog keeps its own copies: changing a record after PutStream, or
// one returned by Stream or Streams, does not change the stored record.
func testCatalogDeepCopies(t *testing.T, x *env) {
	m := sampleStream("s", "id")
	want := m.Clone()
	v := x.put(m, 0)
	mutate := func(m *engine.StreamMeta) {
		m.Tags["team"] = "changed"
		m.Tags["new"] = "x"
		*m.WarmMiBps = 99
		m.Metrics[0] = "changed"
		m.ScaleTimes[0] = -1
		m.Shards[0].End = "changed"
		m.Consumers[0].Tags["k"] = "changed"
		m.Consumers[1].Status = "changed"
		m.Shards[1].DataKeys[0].Wrapped[0] = 99
		m.EncryptionChanges[0] = -1
	}
	mutate(&m)
	checkStream(t, x, want, v)
	got, _, err := x.e.Catalog().Stream(x.ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	mutate(&got)
	checkStream(t, x, want, v)
	ss, err := x.e.Catalog().Streams(x.ctx)
	if err != nil || len(ss) != 1 {
		t.Fatalf("Streams = %v, %v", ss, err)
	}
	mutate(&ss[0].Meta)
	checkStream(t, x, want, v)
}

// DeleteStream removes a record if its version matches: ErrConflict
// otherwise, ErrNotFound when missing.
func testDeleteStream(t *testing.T, x *env) {
	c := x.e.Catalog()
	m := sampleStream("s", "id")
	v := x.put(m, 0)
	other := sampleStream("other", "id2")
	vo := x.put(other, 0)
	for _, expect := range []uint64{0, v + 1000} {
		wantErr(t, fmt.Sprintf("DeleteStream with version %d, stored %d", expect, v), c.DeleteStream(x.ctx, "s", expect), engine.ErrConflict)
	}
	checkStream(t, x, m, v)
	wantErr(t, "DeleteStream of a missing name", c.DeleteStream(x.ctx, "missing", 1), engine.ErrNotFound)
	if err := c.DeleteStream(x.ctx, "s", v); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	_, _, err := c.Stream(x.ctx, "s")
	wantErr(t, "Stream after DeleteStream", err, engine.ErrNotFound)
	wantErr(t, "second DeleteStream", c.DeleteStream(x.ctx, "s", v), engine.ErrNotFound)
	checkStreams(t, x, map[string]engine.VersionedStream{"other": {Meta: other, Version: vo}})
	_, err = c.PutStream(x.ctx, m, v)
	wantErr(t, "PutStream with the deleted record's version", err, engine.ErrConflict)
	m.ID = "id-again"
	checkStream(t, x, m, x.put(m, 0))
}

// The account record follows PutStream's compare-and-set rules.
func testAccount(t *testing.T, x *env) {
	c := x.e.Catalog()
	a := engine.AccountMeta{Secret: "00ff", CommitmentStatus: "ENABLED", CommitmentStart: 1, CommitmentEnd: 2}
	_, err := c.PutAccount(x.ctx, a, 5)
	wantErr(t, "PutAccount(expect 5) of a missing account", err, engine.ErrConflict)
	v1, err := c.PutAccount(x.ctx, a, 0)
	if err != nil || v1 == 0 {
		t.Fatalf("PutAccount(expect 0) = %d, %v", v1, err)
	}
	_, err = c.PutAccount(x.ctx, engine.AccountMeta{Secret: "other"}, 0)
	wantErr(t, "second PutAccount(expect 0)", err, engine.ErrExists)
	checkAccount(t, x, a, v1)
	a2 := a
	a2.CommitmentStatus = "DISABLED"
	v2, err := c.PutAccount(x.ctx, a2, v1)
	if err != nil || v2 == 0 || v2 == v1 {
		t.Fatalf("PutAccount(expect %d) = %d, %v; want a new version", v1, v2, err)
	}
	for _, expect := range []uint64{v1, v2 + 1000} {
		_, err = c.PutAccount(x.ctx, a, expect)
		wantErr(t, fmt.Sprintf("PutAccount with version %d, stored %d", expect, v2), err, engine.ErrConflict)
	}
	checkAccount(t, x, a2, v2)
}

// checkAccount fails the test unless the account record is want at
// version v.
func checkAccount(t *testing.T, x *env, want engine.AccountMeta, v uint64) {
	t.Helper()
	got, gv, err := x.e.Catalog().Account(x.ctx)
	if err != nil || got != want || gv != v {
		t.Fatalf("Account = %+v, %d, %v; want %+v, %d", got, gv, err, want, v)
	}
}

// Of racing PutStream(expect 0) calls on one name, exactly one wins.
func testRacingCreate(t *testing.T, x *env) {
	const n = 16
	errs := make([]error, n)
	vers := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vers[i], errs[i] = x.e.Catalog().PutStream(x.ctx, sampleStream("s", fmt.Sprint("id", i)), 0)
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("racing creates %d and %d both succeeded", winner, i)
			}
			winner = i
		case !errors.Is(err, engine.ErrExists):
			t.Fatalf("racing create %d: %v, want nil or ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racing create succeeded")
	}
	checkStream(t, x, sampleStream("s", fmt.Sprint("id", winner)), vers[winner])
}

// Racing read-modify-write loops that retry on ErrConflict all land.
func testRacingUpdates(t *testing.T, x *env) {
	const writers, updates = 8, 15
	m := sampleStream("s", "id")
	m.NextIndex, m.ScaleTimes = 0, nil
	x.put(m, 0)
	c := x.e.Catalog()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < updates; {
				cur, v, err := c.Stream(x.ctx, "s")
				if err != nil {
					errs <- err
					return
				}
				cur.NextIndex++
				cur.ScaleTimes = append(cur.ScaleTimes, int64(g*1000+i))
				if _, err := c.PutStream(x.ctx, cur, v); errors.Is(err, engine.ErrConflict) {
					continue
				} else if err != nil {
					errs <- err
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, _, err := c.Stream(x.ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if got.NextIndex != writers*updates || len(got.ScaleTimes) != writers*updates {
		t.Fatalf("after %d updates: NextIndex %d, %d scale times", writers*updates, got.NextIndex, len(got.ScaleTimes))
	}
	slices.Sort(got.ScaleTimes)
	for i := 1; i < len(got.ScaleTimes); i++ {
		if got.ScaleTimes[i] == got.ScaleTimes[i-1] {
			t.Fatalf("update %d landed twice", got.ScaleTimes[i])
		}
	}
}

// Racing compare-and-set loops on the account record all land.
func testRacingAccountUpdates(t *testing.T, x *env) {
	const writers, updates = 4, 15
	c := x.e.Catalog()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < updates; {
				cur, v, err := c.Account(x.ctx)
				if err != nil {
					errs <- err
					return
				}
				cur.CommitmentStart++
				_, err = c.PutAccount(x.ctx, cur, v)
				switch {
				case errors.Is(err, engine.ErrConflict), errors.Is(err, engine.ErrExists):
					continue
				case err != nil:
					errs <- err
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	a, _, err := c.Account(x.ctx)
	if err != nil || a.CommitmentStart != writers*updates {
		t.Fatalf("Account after %d updates = %+v, %v", writers*updates, a, err)
	}
}

// The same stream name in two accounts is two records, each under its own
// key (StreamMeta.Key), changed and deleted independently.
func testCatalogAccounts(t *testing.T, x *env) {
	own := sampleStream("orders", "id-own")
	other := sampleStream("orders", "id-other")
	other.Account = "111122223333"
	if own.Key() == other.Key() || other.Key() != "111122223333/orders" {
		t.Fatalf("keys %q and %q", own.Key(), other.Key())
	}
	vo := x.put(own, 0)
	va := x.put(other, 0)
	checkStream(t, x, own, vo)
	checkStream(t, x, other, va)
	ss, err := x.e.Catalog().Streams(x.ctx)
	if err != nil || len(ss) != 2 {
		t.Fatalf("Streams = %d records, %v; want 2", len(ss), err)
	}
	other.RetentionHours = 48
	va = x.put(other, va)
	checkStream(t, x, own, vo)
	checkStream(t, x, other, va)
	if err := x.e.Catalog().DeleteStream(x.ctx, other.Key(), va); err != nil {
		t.Fatalf("DeleteStream(%q): %v", other.Key(), err)
	}
	checkStream(t, x, own, vo)
	_, _, err = x.e.Catalog().Stream(x.ctx, other.Key())
	wantErr(t, "Stream of the deleted account's record", err, engine.ErrNotFound)
}
