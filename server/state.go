package server

import (
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/seqnum"
)

// The locks of this package, what each guards and the order they are taken
// in, are listed in LOCKS.md beside this file.

// Stream statuses and modes as the API spells them.
const (
	statusCreating = "CREATING"
	statusActive   = "ACTIVE"
	statusUpdating = "UPDATING"
	statusDeleting = "DELETING"

	modeProvisioned = "PROVISIONED"
	modeOnDemand    = "ON_DEMAND"

	distributionUserKey = "USER_PARTITION_KEY"
	distributionAuto    = "AUTO"

	defaultRetentionHours = 24
	minRetentionHours     = 24
	maxRetentionHours     = 8760
	defaultMaxRecordKiB   = 1024
	minMaxRecordKiB       = 1024
	maxMaxRecordKiB       = 10240
	onDemandShardCount    = 4
	maxTagsPerStream      = 50
)

// stream is one stream's state. Its metadata is kept in the engine's catalog
// (one record per stream); its records live in the shard logs.
type stream struct {
	name       string
	account    string // the owning account (always set)
	catAccount string // account as the catalog records it: "" for the server's own
	key        string // the stream's key in the snapshot and the catalog (Server.key)
	id         string // incarnation: a stream re-created under the same name gets a new id
	epoch      uint16 // tag of id carried in every sequence number (seqnum.Number.Epoch)
	arn        string
	created    int64 // unix ms

	// policy is the stream's resource-based policy (nil when none); set
	// with ctl held, read without it.
	policy atomic.Pointer[resourcePolicy]

	rr atomic.Uint64 // round robin cursor for the AUTO distribution strategy

	// ctl serialises the control-plane changes of this stream: it is held
	// across their catalog writes and log creations, never by the data
	// plane. Taken before any shard's appendMu and before mu.
	ctl     sync.Mutex
	version uint64 // the catalog version of the stream's record; guarded by ctl

	mu             sync.RWMutex // guards the fields below; never held across I/O
	status         string
	mode           string
	retentionHours int32
	retentionBytes int64 // size-based retention per shard log (0: none); set at start-up only
	tags           map[string]string
	maxRecordKiB   int32
	warmMiBps      *int32
	distribution   string
	metrics        []string
	shards         []*shard // every shard not yet trimmed, by index
	open           []*shard // open shards by starting hash key
	trimFloorMs    int64    // records that arrived before this are gone for good (see retentionCutoff)
	statusTimer    *delayed
	nextIndex      uint32               // index of the next shard a reshard creates; indexes are never reused
	consumers      map[string]*consumer // enhanced fan-out consumers by name
	encKeyID       string               // the KeyId of StartStreamEncryption; "" while unencrypted
	encChanges     []int64              // unix ms of the encryption changes of the last 24 h
	scaleTimes     []int64              // unix ms of the UpdateShardCount calls of the last 24 h (api_reshard.go)
	// onDemand mirrors mode == modeOnDemand for the write path, which
	// measures shard load (autosplit.go) only then and does not hold st.mu
	// while appending. Set by setMode.
	onDemand atomic.Bool
	// monitored mirrors metrics (the shard-level metrics enabled) as a bit
	// set of shardLevelMetrics indexes, for the data path; set by
	// setMetricsLocked.
	monitored atomic.Uint32
}

// shard is one shard: its place in the hash key space and lineage, and its log.
type shard struct {
	index     uint32
	id        string
	parent    string
	adjParent string
	start     hashkey.Key
	end       hashkey.Key
	createdMs int64
	endSeq    string // set when the shard is closed; guarded by st.mu
	closedMs  int64  // when the shard was closed, 0 while open; guarded by st.mu
	log       engine.Log
	writeRate *rateLimiter // nil unless throughput is enforced
	readRate  *rateLimiter

	// appendMu orders appends against closing the shard: an appender holds
	// it for reading across its check of closed and its Append; a reshard
	// holds it for writing from before it seals the log until it has
	// published the shard closed (or rolled back). Never taken while holding
	// st.mu.
	appendMu sync.RWMutex
	closed   atomic.Bool // set (under appendMu and st.mu) when the shard's closing is published
	heat     shardHeat   // incoming load, for ON_DEMAND automatic splits (autosplit.go)
	// keys are the shard's data keys (encryption.go); stored with st.ctl
	// and st.mu held, read by appends and reads without a lock.
	keys atomic.Pointer[shardKeys]

	notifyMu sync.Mutex    // guards notifyCh
	notifyCh chan struct{} // closed by signal; nil until a subscriber asks for one
}

// lifecycle returns a channel closed at the shard's next lifecycle event:
// its closing is published or its stream is deleted. Appends are signalled
// by the log's own Changed channel.
func (sh *shard) lifecycle() <-chan struct{} {
	sh.notifyMu.Lock()
	defer sh.notifyMu.Unlock()
	if sh.notifyCh == nil {
		sh.notifyCh = make(chan struct{})
	}
	return sh.notifyCh
}

// signal wakes every subscriber waiting on the shard's lifecycle. It never
// blocks.
func (sh *shard) signal() {
	sh.notifyMu.Lock()
	if sh.notifyCh != nil {
		close(sh.notifyCh)
		sh.notifyCh = nil
	}
	sh.notifyMu.Unlock()
}

// setMode sets the stream's capacity mode. st.mu is held for writing (or st
// is not shared yet).
func (st *stream) setMode(mode string) {
	st.mode = mode
	st.onDemand.Store(mode == modeOnDemand)
}

func shardIDOf(index uint32) string { return fmt.Sprintf("shardId-%012d", index) }

// logID names the engine log of shard index of st.
func (st *stream) logID(index uint32) engine.LogID { return engine.LogID{Stream: st.id, Shard: index} }

// seq returns the sequence number of the record at pos in shard sh.
func (st *stream) seq(sh *shard, pos engine.Position) string {
	return seqnum.Number{Shard: sh.index, Offset: pos.Offset, Index: pos.Index, Epoch: st.epoch}.String()
}

// epochOf derives a stream's sequence-number epoch from its id.
func epochOf(id string) uint16 {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) < 2 {
		return 0
	}
	return uint16(b[0])<<8 | uint16(b[1])
}

// shardFor returns the open shard whose hash key range holds k.
func (st *stream) shardFor(k hashkey.Key) *shard {
	open := st.open
	i := sort.Search(len(open), func(i int) bool { return open[i].end.Cmp(k) >= 0 })
	if i < len(open) && open[i].start.Cmp(k) <= 0 {
		return open[i]
	}
	return nil
}

func (st *stream) shardByID(id string) *shard {
	for _, sh := range st.shards {
		if sh.id == id {
			return sh
		}
	}
	return nil
}

// rebuildOpen recomputes st.open. It builds a new slice, so that a reader
// that copied the old one keeps a consistent view.
func (st *stream) rebuildOpen() {
	var open []*shard
	for _, sh := range st.shards {
		if sh.endSeq == "" {
			open = append(open, sh)
		}
	}
	sort.Slice(open, func(i, j int) bool { return open[i].start.Cmp(open[j].start) < 0 })
	st.open = open
}
