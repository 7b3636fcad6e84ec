package natsengine

import (
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/shoalstream/shoal/engine"
)

// This file holds the change notices that processes send each other, and the
// Changed channels of logs, which close at the next change this process
// sees.

// Notices are core NATS messages on <prefix>.n.<stream>.<shard> that tell
// other processes' readers about a change: "a <seq>" an append at seq,
// "s <end>" a seal, "d" a deletion. They are hints: a lost notice delays a
// waiter by at most one poll.
const (
	noticeAppend = "a "
	noticeSeal   = "s "
	noticeDelete = "d"
)

// onNotice applies a change notice to the log it names, if this engine
// has it open.
func (e *Engine) onNotice(m *nats.Msg) {
	rest, ok := strings.CutPrefix(m.Subject, e.subjPre+".n.")
	if !ok {
		return
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return
	}
	shard, err := strconv.ParseUint(rest[i+1:], 10, 32)
	if err != nil {
		return
	}
	ls := e.lookup(engine.LogID{Stream: rest[:i], Shard: uint32(shard)})
	if ls == nil {
		return
	}
	data := string(m.Data)
	switch {
	case strings.HasPrefix(data, noticeAppend):
		if seq, err := strconv.ParseUint(data[len(noticeAppend):], 10, 64); err == nil {
			ls.observeSeq(seq)
		}
	case strings.HasPrefix(data, noticeSeal):
		ls.observeSealed()
	case data == noticeDelete:
		ls.kill()
		e.forget(ls)
	}
}

// closedChan is the Changed channel of dead logs.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// notifyLocked wakes the waiters on Changed.
func (ls *logState) notifyLocked() {
	if ls.changed != nil {
		close(ls.changed)
		ls.changed = nil
	}
}

// Changed returns a channel closed at the next change this process sees:
// its own append, seal or deletion, another process's notice of one, or the
// poll that finds one.
func (h *handle) Changed() <-chan struct{} {
	ls := h.ls
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.dead || h.closed.Load() {
		return closedChan
	}
	if ls.changed == nil {
		ls.changed = make(chan struct{})
	}
	return ls.changed
}
