package integration

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shoalstream/shoal/internal/testutil/servertest"
)

// TestCrashReshard crashes the server with SIGKILL while writers put records
// and a resharder splits and merges shards, again and again on the same data
// dir. Reshards are durable before they are visible (the children's logs,
// the parents' seal, then the stream's catalog record), and at start the
// server deletes the logs no catalog record names; after every restart, with
// nothing running, the test checks:
//
//   - (a) every acknowledged record is in the shard of its acknowledgement,
//     at its sequence number, with its partition key and data; no record is
//     present twice or without having been sent, every record lies in its
//     shard's hash key range, sequence numbers increase within a shard, and
//     what the previous verification read of a shard is a prefix of what
//     this one reads (all of it, for a shard that was closed already);
//   - (b) the lineage is sane: every parent exists, every closed shard has
//     children whose hash key ranges cover its own (and GetRecords at its
//     end names the same children), no open shard has children, the open
//     shards tile the whole 128-bit hash key range, every shard seen before
//     still exists and every shard an acknowledged SplitShard or MergeShards
//     closed is closed;
//   - (c) reading the shards in lineage order (parents before children), the
//     records of each partition key come in the order they were sent (each
//     key is written by one writer, one call at a time, so this is also the
//     order of their acknowledgements), unknown-outcome records included;
//   - (d) no shard directory under <data-dir>/streams/<stream id>/ belongs to
//     a shard ListShards does not report, and there is one stream directory.
//
// SHOAL_CRASH_CYCLES sets the number of crashes (default 8) and
// SHOAL_CRASH_SEED the seed of the workload, the reshards and the kill delays
// (it is logged; the timing is not reproducible):
//
//	go test -race -run TestCrashReshard -count=1 -v ./integration/
func TestCrashReshard(t *testing.T) {
	if testing.Short() {
		t.Skip("runs, crashes and restarts the shoal binary; skipped with -short")
	}
	begin := time.Now()
	cycles := envInt(t, "SHOAL_CRASH_CYCLES", 8)
	bin := shoalBinary(t)
	seed := testSeed(t)
	t.Logf("seed %#x (SHOAL_CRASH_SEED=%#x repeats the workload and the reshard choices, not the timing)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	m := newRSModel(t, seed)
	logs := newLogBook(t)
	dataDir := t.TempDir()
	// Small segments, so that writers also roll segments; info level, so
	// that the server's reshard log lines are there if the test fails.
	start := func(label string) *proc {
		return startServer(t, bin, logs, label, dataDir, "--segment-bytes", strconv.Itoa(256<<10), "--log-level", "info")
	}

	p := start("initial")
	func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := servertest.Client(p.endpoint)
		if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{
			StreamName: aws.String(rsStream), ShardCount: aws.Int32(2),
			StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned},
		}); err != nil {
			t.Fatalf("CreateStream: %v", err)
		}
		waitActive(ctx, t, c, rsStream)
	}()
	m.verify(p.endpoint, dataDir, "new stream")

	for cycle := 1; cycle <= cycles; cycle++ {
		name := fmt.Sprintf("cycle %d", cycle)
		m.cycle = cycle
		ph := m.startLoad(p.endpoint, name)
		// The kill comes at a random moment; every other one waits (at most
		// half a second) for a reshard call to be in flight and then a few
		// more random milliseconds, so that kills also land inside reshards.
		delay := 200*time.Millisecond + time.Duration(rng.Int64N(int64(time.Second)))
		time.Sleep(delay)
		aimed := rng.IntN(2) == 0
		extra := time.Duration(rng.Int64N(int64(15 * time.Millisecond))) // a reshard call takes a few ms to tens of ms
		if aimed {
			for wait := time.Now().Add(500 * time.Millisecond); !ph.rs.inflight.Load() && time.Now().Before(wait); {
				time.Sleep(50 * time.Microsecond)
			}
			time.Sleep(extra)
		}
		inflightPuts := ph.inflight.Load()
		op := ph.rs.current()
		died := p.exited()
		_ = p.cmd.Process.Kill()
		ph.halt()
		<-p.done
		ph.wait()
		if died {
			t.Errorf("%s: the server exited on its own before the SIGKILL: %v", name, p.waitErr)
		}
		at := "no reshard in flight"
		if op != nil {
			at = "reshard in flight: " + op.String()
		}
		how := ""
		if aimed {
			how = fmt.Sprintf(" (aimed at a reshard, +%v)", extra.Round(10*time.Microsecond))
		}
		t.Logf("%s: SIGKILL after %v%s with %d PutRecords in flight, %s; %s",
			name, delay.Round(time.Millisecond), how, inflightPuts, at, ph.summary())

		// The shard directories the crash left, to count the orphans (logs
		// of reshards that never reached the catalog) the restart removes.
		m.dirsAtCrash = rsShardDirs(t, dataDir)
		// Every third cycle or so, the restarting server is killed too,
		// 0-100 ms after it started: during its recovery, perhaps while
		// it removes the logs of reshards that never reached the catalog.
		if rng.IntN(3) == 0 {
			early := time.Duration(rng.Int64N(int64(100 * time.Millisecond)))
			state := "still loading"
			if rsKillEarly(t, bin, logs, name+" restart killed early", dataDir, early) {
				state = "listening"
			}
			t.Logf("%s: SIGKILL of the restarting server %v after it started (%s)", name, early.Round(time.Millisecond), state)
			m.earlyKills++
		}
		restart := time.Now()
		p = start(name + " restart")
		t.Logf("%s: the restarted server answered ListStreams after %v", name, time.Since(restart).Round(time.Millisecond))
		m.verify(p.endpoint, dataDir, name)
		t.Logf("%s: totals: %d records acknowledged, %d of unknown outcome (%d found, %d absent); %d shards (%d open); %d reshards acknowledged (%d splits, %d merges), %d of unknown outcome (%d happened)",
			name, len(m.acks), len(m.pending)+m.unknownFound+m.unknownLost, m.unknownFound, m.unknownLost, len(m.shards), m.open,
			m.splits+m.merges, m.splits, m.merges, m.rsUnknown, m.rsUnknownHappened)
		if t.Failed() {
			t.FailNow() // later cycles would only repeat the report
		}
	}
	p.kill()
	t.Logf("summary: %d crash cycles; %d PutRecords calls (%d failed); %d records acknowledged, all present at every verification; %d unknown-outcome records (%d found, %d absent); "+
		"%d reshards acknowledged, %d interrupted by a kill (%d of them happened); %d orphan shard directories removed by restarts; %d restarting servers killed too; %d shards; %d verifications read %d records in %v; total %v",
		cycles, m.calls, m.errCalls, len(m.acks), m.unknownFound+m.unknownLost, m.unknownFound, m.unknownLost,
		m.splits+m.merges, m.rsUnknown, m.rsUnknownHappened, m.orphansRemoved, m.earlyKills, len(m.shards), m.verifications, m.readRecords,
		m.verifyTime.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
}

const (
	rsStream        = "crash-reshard"
	rsWriters       = 4
	rsKeysPerWriter = 8
	rsMaxBatch      = 20
	rsWriterRate    = 300 // records per second per writer
	rsMaxOpen       = 6   // open shards the resharder keeps at most
	rsMaxPayload    = 120 // bytes after the 8-byte id
)

// rsMaxHashKey is 2^128-1.
var rsMaxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// rsKey is the partition key of writer w's key k: a fixed set of keys, whose
// hash keys move from shard to shard as the stream is resharded.
func rsKey(w, k int) string { return "rk-w" + strconv.Itoa(w) + "-k" + strconv.Itoa(k) }

func rsParseKey(pk string) (w, k int, ok bool) {
	if n, err := fmt.Sscanf(pk, "rk-w%d-k%d", &w, &k); n != 2 || err != nil {
		return 0, 0, false
	}
	return w, k, w >= 0 && w < rsWriters && k >= 0 && k < rsKeysPerWriter && rsKey(w, k) == pk
}

// rsHashKey is the hash key Kinesis derives from a partition key.
func rsHashKey(pk string) *big.Int {
	sum := md5.Sum([]byte(pk))
	return new(big.Int).SetBytes(sum[:])
}

// rsAck is one acknowledged record.
type rsAck struct {
	id    recID // writer, key, counter
	shard string
	seq   string
	sent  uint64 // logical clock when its call was sent
	ret   uint64 // logical clock when its call returned
	cycle int
}

// rsRange is a shard's hash key range.
type rsRange struct{ lo, hi *big.Int }

func (r rsRange) String() string { return "[" + r.lo.String() + ", " + r.hi.String() + "]" }

// rsShard is a shard as the verifications saw it.
type rsShard struct {
	id        string
	parent    string
	adjParent string
	rng       rsRange
	closed    bool
}

// rsModel is what the test sent to the stream and learnt of it.
type rsModel struct {
	t     *testing.T
	seed  uint64
	cycle int
	clock atomic.Uint64 // logical clock ordering call sends and returns

	writers [rsWriters]*rsWriter
	rs      *rsResharderState

	acks    map[recID]*rsAck
	pending map[recID]int       // unknown outcome, not yet verified: id -> cycle
	lost    map[recID]bool      // unknown outcome, absent at a verification: must never appear
	found   map[recID]bool      // unknown outcome, present at a verification
	prev    map[string][]recID  // what the previous verification read, by shard
	shards  map[string]*rsShard // the shards the previous verification listed
	open    int

	closedByAck     map[string]string // shards an acknowledged reshard closed -> that reshard
	unknownReshards []*rsOp           // interrupted by a kill, not yet resolved
	dirsAtCrash     []string          // shard directories after the last kill

	calls, errCalls              int
	unknownFound, unknownLost    int
	splits, merges               int // acknowledged reshards
	rsUnknown, rsUnknownHappened int // reshards interrupted by a kill; of them, those that happened
	orphansRemoved               int
	earlyKills                   int // restarting servers killed
	verifications, readRecords   int
	verifyTime                   time.Duration
}

type rsWriter struct {
	w    int
	rng  *rand.Rand
	next [rsKeysPerWriter]uint64
}

func newRSModel(t *testing.T, seed uint64) *rsModel {
	m := &rsModel{
		t: t, seed: seed,
		acks: map[recID]*rsAck{}, pending: map[recID]int{}, lost: map[recID]bool{}, found: map[recID]bool{},
		prev: map[string][]recID{}, shards: map[string]*rsShard{}, closedByAck: map[string]string{},
		rs: &rsResharderState{rng: rand.New(rand.NewPCG(seed, 100))},
	}
	for w := range rsWriters {
		m.writers[w] = &rsWriter{w: w, rng: rand.New(rand.NewPCG(seed, uint64(w)+1))}
	}
	return m
}

// payload is the data of record id: its id (8 bytes, big endian) and 0..120
// bytes that are a pure function of the seed and the id.
func (m *rsModel) payload(id recID) []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[0:], m.seed)
	binary.LittleEndian.PutUint64(seed[8:], uint64(id))
	copy(seed[16:], "crash-reshard")
	src := rand.NewChaCha8(seed)
	n := int(src.Uint64() % (rsMaxPayload + 1))
	b := make([]byte, 8+n)
	binary.BigEndian.PutUint64(b, uint64(id))
	_, _ = src.Read(b[8:])
	return b
}
