package natsengine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoalstream/shoal/engine"
)

// This file holds the JetStream streams of logs: their names and subjects,
// the checks of log ids and prefixes, the map of open logs, and CreateLog,
// OpenLog and Logs.

// streamName is the JetStream stream of log id.
func (e *Engine) streamName(id engine.LogID) string {
	return e.cfg.Prefix + "_" + id.Stream + "_" + strconv.FormatUint(uint64(id.Shard), 10)
}

// dataSubject is the subject of log id's batches.
func (e *Engine) dataSubject(id engine.LogID) string {
	return e.subjPre + ".d." + id.Stream + "." + strconv.FormatUint(uint64(id.Shard), 10)
}

// noticeSubject is the subject of log id's change notices.
func (e *Engine) noticeSubject(id engine.LogID) string {
	return e.subjPre + ".n." + id.Stream + "." + strconv.FormatUint(uint64(id.Shard), 10)
}

// parseStreamName returns the log of a JetStream stream name, if it is one
// of this engine's.
func (e *Engine) parseStreamName(name string) (engine.LogID, bool) {
	rest, ok := strings.CutPrefix(name, e.cfg.Prefix+"_")
	if !ok {
		return engine.LogID{}, false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 {
		return engine.LogID{}, false
	}
	n, err := strconv.ParseUint(rest[i+1:], 10, 32)
	if err != nil || strconv.FormatUint(n, 10) != rest[i+1:] {
		return engine.LogID{}, false
	}
	id := engine.LogID{Stream: rest[:i], Shard: uint32(n)}
	if checkLogID(id) != nil {
		return engine.LogID{}, false
	}
	return id, true
}

// checkLogID rejects ids that cannot name a JetStream stream and a subject
// token: the stream id must be [A-Za-z0-9_-], 1 to 200 bytes.
func checkLogID(id engine.LogID) error {
	if id.Stream == "" || len(id.Stream) > 200 {
		return fmt.Errorf("natsengine: invalid log id %q: the stream id must be 1 to 200 bytes", id.String())
	}
	for i := 0; i < len(id.Stream); i++ {
		c := id.Stream[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("natsengine: invalid log id %q: the stream id may hold only A-Z, a-z, 0-9, _ and -", id.String())
		}
	}
	return nil
}

func validPrefix(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// logStateFor returns the shared state of id, making it with mk if there is
// none. It fails after Close.
func (e *Engine) logStateFor(id engine.LogID, mk func() *logState) (*logState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return nil, errClosed("open log " + id.String())
	}
	if ls := e.logs[id]; ls != nil {
		return ls, nil
	}
	ls := mk()
	e.logs[id] = ls
	return ls, nil
}

// lookup returns the state of id, or nil.
func (e *Engine) lookup(id engine.LogID) *logState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs[id]
}

// forget removes ls from the map of logs (after its deletion).
func (e *Engine) forget(ls *logState) {
	e.mu.Lock()
	if e.logs[ls.id] == ls {
		delete(e.logs, ls.id)
	}
	e.mu.Unlock()
}

// CreateLog creates the JetStream stream of a new log. It fails with
// ErrExists if the stream exists. Labels in ctx (engine.WithLabels) go into
// the stream's metadata.
func (e *Engine) CreateLog(ctx context.Context, id engine.LogID) (engine.Log, error) {
	if e.closed.Load() {
		return nil, errClosed("create log " + id.String())
	}
	if err := checkLogID(id); err != nil {
		return nil, err
	}
	name := e.streamName(id)
	nonce := e.newMsgID()
	meta := map[string]string{
		metaLog:     id.String(),
		metaPrefix:  e.cfg.Prefix,
		metaCreator: nonce,
	}
	if l, ok := engine.LabelsFrom(ctx); ok {
		if l.StreamName != "" {
			meta[metaKinesisStream] = l.StreamName
		}
		if l.ShardID != "" {
			meta[metaKinesisShard] = l.ShardID
		}
	}
	cfg := jetstream.StreamConfig{
		Name:        name,
		Description: "shoal shard log " + id.String(),
		Subjects:    []string{e.dataSubject(id)},
		Storage:     jetstream.FileStorage,
		Replicas:    e.cfg.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxMsgSize:  -1,
		AllowDirect: true,
		DenyDelete:  true,
		Duplicates:  dupWindow,
		Metadata:    meta,
	}
	err := e.retry(ctx, func(ctx context.Context) error {
		_, err := e.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Ours, from an attempt whose reply was lost, or another's?
			s, ierr := e.js.Stream(ctx, name)
			if ierr != nil {
				return ierr
			}
			if s.CachedInfo().Config.Metadata[metaCreator] == nonce {
				return nil
			}
			return fmt.Errorf("natsengine: create log %v: stream %s: %w", id, name, engine.ErrExists)
		}
		return err
	})
	if err != nil {
		if errors.Is(err, engine.ErrExists) {
			return nil, err
		}
		return nil, fmt.Errorf("natsengine: create log %v: %w", id, err)
	}
	ls, err := e.logStateFor(id, func() *logState {
		ls := e.newLogState(id)
		ls.arrivalKnown = true // empty: nothing arrived yet
		return ls
	})
	if err != nil {
		return nil, err
	}
	return &handle{ls: ls}, nil
}

// Keys of the JetStream stream metadata of a log.
const (
	metaLog           = "shoal.log"
	metaPrefix        = "shoal.prefix"
	metaCreator       = "shoal.create"
	metaKinesisStream = "shoal.kinesis.stream"
	metaKinesisShard  = "shoal.kinesis.shard"
)

// dupWindow is the deduplication window of every stream: a publish retried
// with the same Nats-Msg-Id within it is stored once.
const dupWindow = 2 * time.Minute

// OpenLog returns a handle of log id. It fails with ErrNotFound if the
// JetStream stream does not exist.
func (e *Engine) OpenLog(ctx context.Context, id engine.LogID) (engine.Log, error) {
	if e.closed.Load() {
		return nil, errClosed("open log " + id.String())
	}
	if err := checkLogID(id); err != nil {
		return nil, err
	}
	if ls := e.lookup(id); ls != nil {
		return &handle{ls: ls}, nil
	}
	var si *jetstream.StreamInfo
	err := e.retry(ctx, func(ctx context.Context) error {
		var err error
		si, err = e.streamInfo(ctx, e.streamName(id))
		return err
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("natsengine: open log %v: %w", id, engine.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("natsengine: open log %v: %w", id, err)
	}
	ls, err := e.logStateFor(id, func() *logState { return e.newLogState(id) })
	if err != nil {
		return nil, err
	}
	ls.observeInfo(si)
	return &handle{ls: ls}, nil
}

// Logs lists the JetStream streams of this engine's prefix.
func (e *Engine) Logs(ctx context.Context) ([]engine.LogID, error) {
	if e.closed.Load() {
		return nil, errClosed("logs")
	}
	var ids []engine.LogID
	err := e.retry(ctx, func(ctx context.Context) error {
		ids = ids[:0]
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		l := e.js.StreamNames(ctx, jetstream.WithStreamListSubject(e.subjPre+".d.>"))
		for name := range l.Name() {
			if id, ok := e.parseStreamName(name); ok {
				ids = append(ids, id)
			}
		}
		return l.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("natsengine: logs: %w", err)
	}
	return ids, nil
}
