package natsengine

import (
	"context"

	"github.com/shoalstream/shoal/engine"
)

// This file holds the reads by arrival time and through the leader:
// SeekTime, Info and TrimBefore.

// seekSeq returns the first sequence in [first, last] whose batch arrived
// at or after ms, or 0 if none did. It binary-searches with reads through
// the leader (arrival times never decrease within a log, as this process
// stamps them; see the package documentation).
func (ls *logState) seekSeq(ctx context.Context, ms int64, first, last uint64) (uint64, error) {
	// probe returns the first message at or after seq and its arrival.
	probe := func(seq uint64) (uint64, int64, error) {
		m, err := ls.e.leaderGet(ctx, ls.name, msgGetRequest{Seq: seq, NextFor: ls.subject})
		if err != nil || m == nil {
			return 0, 0, err
		}
		a, _, err := ls.decode(m.Seq, m.Data)
		return m.Seq, a, err
	}
	s, a, err := probe(first)
	if err == nil && s != 0 {
		ls.observeOldest(s, a)
	}
	if err != nil || s == 0 || a >= ms {
		return s, err // the common case: nothing older than ms is left
	}
	la, err := ls.arrivalAt(ctx, last)
	if err != nil || la < ms {
		return 0, err
	}
	// The batch at or after lo arrived before ms; the one at or after hi
	// (it is hiSeq) did not.
	lo, hi, hiSeq := s, last, last
	for lo+1 < hi {
		mid := lo + (hi-lo)/2
		s, a, err := probe(mid)
		if err != nil {
			return 0, err
		}
		if s == 0 || a >= ms {
			hi, hiSeq = mid, max(s, mid)
		} else {
			lo = s
		}
	}
	return hiSeq, nil
}

// SeekTime returns the position of the first batch that arrived at or
// after ms: it checks the oldest batch first, then binary-searches.
func (h *handle) SeekTime(ctx context.Context, ms int64) (engine.Position, error) {
	if err := h.check("seek"); err != nil {
		return engine.Position{}, err
	}
	ls := h.ls
	if seq, ok := ls.seekOldest(ms); ok {
		return engine.Position{Offset: seq}, nil
	}
	si, err := ls.info(ctx, "seek")
	if err != nil {
		return engine.Position{}, err
	}
	end := engine.Position{Offset: si.State.LastSeq + 1}
	if si.State.Msgs == 0 {
		return end, nil
	}
	seq, err := ls.seekSeq(ctx, ms, si.State.FirstSeq, si.State.LastSeq)
	if err != nil {
		return engine.Position{}, ls.lost("seek", err)
	}
	if seq == 0 {
		return end, nil
	}
	return engine.Position{Offset: seq}, nil
}

// Info reports the stream leader's first and last sequences and the
// newest batch's arrival time.
func (h *handle) Info(ctx context.Context) (engine.Info, error) {
	if err := h.check("info"); err != nil {
		return engine.Info{}, err
	}
	ls := h.ls
	si, err := ls.info(ctx, "info")
	if err != nil {
		return engine.Info{}, err
	}
	end := engine.Position{Offset: si.State.LastSeq + 1}
	in := engine.Info{Oldest: end, End: end}
	if si.State.Msgs > 0 {
		in.Oldest = engine.Position{Offset: si.State.FirstSeq}
	}
	if si.State.LastSeq > 0 {
		if in.LastArrivalMillis, err = ls.arrivalAt(ctx, si.State.LastSeq); err != nil {
			return engine.Info{}, ls.lost("info", err)
		}
	}
	return in, nil
}

// TrimBefore purges the batches before the first that arrived at or after
// ms, never the newest one, and returns how many it removed. A sealed
// stream refuses purges: TrimBefore removes nothing from it.
func (h *handle) TrimBefore(ctx context.Context, ms int64) (int, error) {
	if err := h.check("trim"); err != nil {
		return 0, err
	}
	ls := h.ls
	si, err := ls.info(ctx, "trim")
	if err != nil {
		return 0, err
	}
	if si.Config.Sealed || si.State.Msgs <= 1 {
		return 0, nil
	}
	first, last := si.State.FirstSeq, si.State.LastSeq
	cut, err := ls.seekSeq(ctx, ms, first, last)
	if err != nil {
		return 0, ls.lost("trim", err)
	}
	if cut == 0 || cut > last {
		cut = last // keep the newest batch: it carries the log's last arrival
	}
	if cut <= first {
		return 0, nil
	}
	n, err := ls.e.purge(ctx, ls.name, cut)
	if apiCode(err) == codeSealed {
		ls.observeSealed()
		return 0, nil
	}
	if err != nil {
		return 0, ls.lost("trim", err)
	}
	ls.observeFirst(cut)
	return int(n), nil
}
