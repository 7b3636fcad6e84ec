package server

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/hashkey"
	"github.com/shoalstream/shoal/internal/seqnum"
	"github.com/shoalstream/shoal/internal/storage"
)

// Lock order: Server.mu before stream.mu. Shard logs have their own locks and
// are never called with Server.mu held for writing except to open or close them.

const fsyncInterval = storage.FsyncInterval

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

// stream is one stream's state. Its metadata is persisted in meta.json; its
// records live in the shard logs.
type stream struct {
	name    string
	id      string // incarnation: a stream re-created under the same name gets a new id
	epoch   uint16 // tag of id carried in every sequence number (seqnum.Number.Epoch)
	arn     string
	created int64 // unix ms

	rr atomic.Uint64 // round robin cursor for the AUTO distribution strategy

	mu             sync.RWMutex // guards the fields below
	status         string
	mode           string
	retentionHours int32
	tags           map[string]string
	maxRecordKiB   int32
	warmMiBps      *int32
	distribution   string
	metrics        []string
	shards         []*shard // every shard not yet trimmed, by index
	open           []*shard // open shards by starting hash key
	trimFloorMs    int64    // records that arrived before this are gone for good (see retentionCutoff)
	statusTimer    *time.Timer
	nextIndex      uint32               // index of the next shard a reshard creates; indexes are never reused
	consumers      map[string]*consumer // enhanced fan-out consumers by name
	scaleTimes     []int64              // unix ms of the UpdateShardCount calls of the last 24 h (api_reshard.go)
	// onDemand mirrors mode == modeOnDemand for the write path, which
	// measures shard load (autosplit.go) only then and does not hold st.mu
	// while appending. Set by setMode.
	onDemand atomic.Bool
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
	endSeq    string // set when the shard is closed
	closedMs  int64  // when the shard was closed, 0 while open
	log       *storage.Log
	writeRate *rateLimiter // nil unless throughput is enforced
	readRate  *rateLimiter

	// appendMu orders appends against closing the shard: an appender holds
	// it for reading across its check of closed and its Append; a reshard
	// holds it for writing while it closes the shard. Never taken while
	// holding st.mu by an appender; a closer takes it before st.mu.
	appendMu sync.RWMutex
	closed   atomic.Bool // set (under appendMu and st.mu) when the shard is closed
	heat     shardHeat   // incoming load, for ON_DEMAND automatic splits (autosplit.go)

	notifyMu sync.Mutex    // guards notifyCh
	notifyCh chan struct{} // closed by signal; nil until a subscriber asks for one
}

// changed returns a channel that is closed at the next signal: the next
// durable append, the shard's closing or its stream's deletion. A subscriber
// takes it before reading the log, so an append that lands after the read
// always wakes it.
func (sh *shard) changed() <-chan struct{} {
	sh.notifyMu.Lock()
	defer sh.notifyMu.Unlock()
	if sh.notifyCh == nil {
		sh.notifyCh = make(chan struct{})
	}
	return sh.notifyCh
}

// signal wakes every subscriber waiting on the shard. It never blocks: an
// appender pays one mutex and, only when someone waits, one close.
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

// seq returns the sequence number of the record at pos in shard sh.
func (st *stream) seq(sh *shard, pos storage.Position) string {
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

func (st *stream) rebuildOpen() {
	st.open = st.open[:0]
	for _, sh := range st.shards {
		if sh.endSeq == "" {
			st.open = append(st.open, sh)
		}
	}
	sort.Slice(st.open, func(i, j int) bool { return st.open[i].start.Cmp(st.open[j].start) < 0 })
}

// ---- persistence ----

const metaFile = "meta.json"

type metaRoot struct {
	Version  int             `json:"version"`
	Secret   string          `json:"secret"`
	Account  accountSettings `json:"account"`
	Streams  []metaStream    `json:"streams"`
	Modified int64           `json:"modified"`
}

type accountSettings struct {
	CommitmentStatus string `json:"commitmentStatus,omitempty"`
	CommitmentStart  int64  `json:"commitmentStart,omitempty"`
	CommitmentEnd    int64  `json:"commitmentEnd,omitempty"`
}

type metaStream struct {
	Name           string            `json:"name"`
	ID             string            `json:"id"`
	Created        int64             `json:"created"`
	Status         string            `json:"status"`
	Mode           string            `json:"mode"`
	RetentionHours int32             `json:"retentionHours"`
	Tags           map[string]string `json:"tags,omitempty"`
	MaxRecordKiB   int32             `json:"maxRecordKiB"`
	WarmMiBps      *int32            `json:"warmMiBps,omitempty"`
	Distribution   string            `json:"distribution"`
	Metrics        []string          `json:"metrics,omitempty"`
	TrimFloorMs    int64             `json:"trimFloorMs,omitempty"`
	NextIndex      uint32            `json:"nextIndex,omitempty"`
	ScaleTimes     []int64           `json:"scaleTimes,omitempty"`
	Shards         []metaShard       `json:"shards"`
	Consumers      []metaConsumer    `json:"consumers,omitempty"`
}

type metaConsumer struct {
	Name    string            `json:"name"`
	Created int64             `json:"created"` // unix ms
	Status  string            `json:"status"`
	Tags    map[string]string `json:"tags,omitempty"`
}

type metaShard struct {
	Index     uint32 `json:"index"`
	Parent    string `json:"parent,omitempty"`
	AdjParent string `json:"adjParent,omitempty"`
	Start     string `json:"start"`
	End       string `json:"end"`
	CreatedMs int64  `json:"createdMs"`
	EndSeq    string `json:"endSeq,omitempty"`
	ClosedMs  int64  `json:"closedMs,omitempty"`
}

func (s *Server) streamsDir() string { return filepath.Join(s.cfg.DataDir, "streams") }

func (s *Server) streamDir(st *stream) string { return filepath.Join(s.streamsDir(), st.id) }

func (s *Server) shardDir(st *stream, index uint32) string {
	return filepath.Join(s.streamDir(st), shardIDOf(index))
}

func (s *Server) logOptions() storage.Options {
	return storage.Options{
		SegmentBytes: s.cfg.SegmentBytes,
		Fsync:        s.cfg.Fsync,
		Logger:       s.log.Named("storage"),
		Now:          s.cfg.Now,
	}
}

// load reads meta.json, opens every shard log (recovering each), finishes
// transitions a crash interrupted, and removes directories of streams that
// no longer exist.
func (s *Server) load() error {
	if err := os.MkdirAll(s.streamsDir(), 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	raw, err := os.ReadFile(filepath.Join(s.cfg.DataDir, metaFile))
	var root metaRoot
	switch {
	case errors.Is(err, os.ErrNotExist):
		root.Version = 1
	case err != nil:
		return fmt.Errorf("read metadata: %w", err)
	default:
		if err := json.Unmarshal(raw, &root); err != nil {
			return fmt.Errorf("parse metadata %s: %w", filepath.Join(s.cfg.DataDir, metaFile), err)
		}
	}
	if root.Secret != "" {
		s.secret, err = hex.DecodeString(root.Secret)
		if err != nil || len(s.secret) < 16 {
			return fmt.Errorf("metadata: bad secret")
		}
	} else {
		s.secret = make([]byte, 32)
		if _, err := rand.Read(s.secret); err != nil {
			return fmt.Errorf("generate secret: %w", err)
		}
	}
	s.account = root.Account
	keep := map[string]bool{}
	for _, ms := range root.Streams {
		st := &stream{
			name: ms.Name, id: ms.ID, epoch: epochOf(ms.ID), arn: s.streamARN(ms.Name), created: ms.Created,
			status: ms.Status, retentionHours: ms.RetentionHours, tags: ms.Tags,
			maxRecordKiB: ms.MaxRecordKiB, warmMiBps: ms.WarmMiBps, distribution: ms.Distribution,
			metrics: ms.Metrics, trimFloorMs: ms.TrimFloorMs, nextIndex: ms.NextIndex, scaleTimes: ms.ScaleTimes,
		}
		st.setMode(ms.Mode)
		if st.tags == nil {
			st.tags = map[string]string{}
		}
		st.consumers = map[string]*consumer{}
		for _, mc := range ms.Consumers {
			c := &consumer{name: mc.Name, created: mc.Created, status: mc.Status, tags: mc.Tags}
			switch c.status {
			case statusDeleting:
				continue // finish the deregistration
			case statusCreating:
				c.status = statusActive // finish the registration
			}
			c.arn = s.consumerARN(st.name, c.name, c.created)
			st.consumers[c.name] = c
		}
		switch st.status {
		case statusDeleting:
			continue // finish the deletion: the directory is removed below
		case statusCreating, statusUpdating:
			st.status = statusActive
		}
		for _, m := range ms.Shards {
			sh := &shard{index: m.Index, id: shardIDOf(m.Index), parent: m.Parent, adjParent: m.AdjParent,
				createdMs: m.CreatedMs, endSeq: m.EndSeq, closedMs: m.ClosedMs}
			if sh.start, err = hashkey.Parse(m.Start); err != nil {
				return fmt.Errorf("metadata: stream %s shard %d: %w", ms.Name, m.Index, err)
			}
			if sh.end, err = hashkey.Parse(m.End); err != nil {
				return fmt.Errorf("metadata: stream %s shard %d: %w", ms.Name, m.Index, err)
			}
			if sh.log, err = storage.Open(s.shardDir(st, m.Index), s.logOptions()); err != nil {
				return fmt.Errorf("open stream %s %s: %w", ms.Name, sh.id, err)
			}
			s.attachLimits(sh)
			sh.closed.Store(sh.endSeq != "")
			st.nextIndex = max(st.nextIndex, sh.index+1)
			st.shards = append(st.shards, sh)
		}
		st.rebuildOpen()
		s.streams[st.name] = st
		keep[st.id] = true
	}
	entries, err := os.ReadDir(s.streamsDir())
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			s.log.Info("removing data of a deleted stream", zap.String("dir", e.Name()))
			if err := os.RemoveAll(filepath.Join(s.streamsDir(), e.Name())); err != nil {
				return fmt.Errorf("remove %s: %w", e.Name(), err)
			}
		}
	}
	return s.saveLocked()
}

// saveLocked writes meta.json atomically: a temporary file, fsync, rename,
// fsync of the directory. The caller holds s.mu (or is the only goroutine).
func (s *Server) saveLocked() error {
	root := metaRoot{Version: 1, Secret: hex.EncodeToString(s.secret), Account: s.account, Modified: s.cfg.Now().UnixMilli()}
	names := make([]string, 0, len(s.streams))
	for n := range s.streams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := s.streams[n]
		st.mu.RLock()
		ms := metaStream{
			Name: st.name, ID: st.id, Created: st.created, Status: st.status, Mode: st.mode,
			RetentionHours: st.retentionHours, Tags: st.tags, MaxRecordKiB: st.maxRecordKiB,
			WarmMiBps: st.warmMiBps, Distribution: st.distribution, Metrics: st.metrics,
			TrimFloorMs: st.trimFloorMs, NextIndex: st.nextIndex, ScaleTimes: st.scaleTimes,
		}
		for _, sh := range st.shards {
			ms.Shards = append(ms.Shards, metaShard{Index: sh.index, Parent: sh.parent, AdjParent: sh.adjParent,
				Start: sh.start.String(), End: sh.end.String(), CreatedMs: sh.createdMs, EndSeq: sh.endSeq, ClosedMs: sh.closedMs})
		}
		for _, c := range st.sortedConsumers() {
			ms.Consumers = append(ms.Consumers, metaConsumer{Name: c.name, Created: c.created, Status: c.status, Tags: c.tags})
		}
		st.mu.RUnlock()
		root.Streams = append(root.Streams, ms)
	}
	raw, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return fmt.Errorf("encode metadata: %w", err)
	}
	return writeFileAtomic(filepath.Join(s.cfg.DataDir, metaFile), raw)
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".meta-*")
	if err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write metadata: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync metadata: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close metadata: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename metadata: %w", err)
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync data dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync data dir: %w", err)
	}
	return nil
}

// closeStreams syncs and closes every shard log.
func (s *Server) closeStreams() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, st := range s.streams {
		st.mu.Lock()
		if st.statusTimer != nil {
			st.statusTimer.Stop()
		}
		for _, c := range st.consumers {
			if c.timer != nil {
				c.timer.Stop()
			}
		}
		for _, sh := range st.shards {
			if err := sh.log.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s/%s: %w", st.name, sh.id, err))
			}
		}
		st.mu.Unlock()
	}
	return errors.Join(errs...)
}

// allLogs snapshots every open shard log.
func (s *Server) allLogs() []*storage.Log {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var logs []*storage.Log
	for _, st := range s.streams {
		st.mu.RLock()
		for _, sh := range st.shards {
			logs = append(logs, sh.log)
		}
		st.mu.RUnlock()
	}
	return logs
}

func (s *Server) syncAll() {
	for _, l := range s.allLogs() {
		if err := l.Sync(); err != nil && !errors.Is(err, storage.ErrClosed) {
			s.log.Error("sync shard log", zap.Error(err))
		}
	}
}

// enforceRetention deletes the segments whose records are all older than
// their stream's retention period.
func (s *Server) enforceRetention() {
	now := s.cfg.Now()
	s.mu.RLock()
	type job struct {
		log    *storage.Log
		cutoff int64
	}
	var jobs []job
	for _, st := range s.streams {
		st.mu.RLock()
		cutoff := st.retentionCutoff(now)
		for _, sh := range st.shards {
			jobs = append(jobs, job{sh.log, cutoff})
		}
		st.mu.RUnlock()
	}
	s.mu.RUnlock()
	for _, j := range jobs {
		if n, err := j.log.TrimBefore(j.cutoff); err != nil && !errors.Is(err, storage.ErrClosed) {
			s.log.Error("retention trim", zap.Error(err))
		} else if n > 0 {
			s.log.Debug("retention trimmed segments", zap.Int("segments", n))
		}
	}
}

// trimHorizon is the oldest position a reader of the shard may see: records
// older than the retention period are gone even before their segment is.
func (s *Server) trimHorizon(st *stream, sh *shard) storage.Position {
	st.mu.RLock()
	cutoff := st.retentionCutoff(s.cfg.Now())
	st.mu.RUnlock()
	oldest := sh.log.Oldest()
	if p := sh.log.SeekTime(cutoff); oldest.Less(p) {
		return p
	}
	return oldest
}

// retentionCutoff returns the arrival time before which records have expired.
// It never moves backwards: raising the retention period does not bring back
// records that had already expired, as in Kinesis. The caller holds st.mu.
func (st *stream) retentionCutoff(now time.Time) int64 {
	return max(now.Add(-time.Duration(st.retentionHours)*time.Hour).UnixMilli(), st.trimFloorMs)
}

func newStreamID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
