package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/consumer"
)

// aggregator gathers the trades of every shard this worker processes into
// event-time windows (by the trade's own time, not the clock's), and prints
// each window's report once the window is complete.
//
// A window is complete when every shard of the stream has delivered a
// trade from at least lateness after the window's end: the trades of one
// shard arrive in the order they were put, so nothing of the window can
// follow. The shards are those open when the consumer started, and the
// worker must hold them all: one consumer process, as in the AWS tutorial.
// A trade that arrives for a window already reported is counted as late
// and left out.
type aggregator struct {
	out      io.Writer
	window   time.Duration
	lateness time.Duration
	want     int // stop after this many distinct trades; 0 means never
	logger   *zap.Logger

	mu       sync.Mutex // guards the fields below
	shards   []string
	mark     map[string]time.Time // shard -> latest trade time it delivered
	open     map[time.Time]*windowStats
	reported time.Time // every window before this was reported
	windows  int       // windows reported
	total    int       // distinct trades counted
	dups     int
	late     int
	bad      int
	finished bool
	done     chan struct{} // closed when want trades were counted
}

func newAggregator(out io.Writer, shards []string, window, lateness time.Duration, want int, logger *zap.Logger) *aggregator {
	return &aggregator{
		out: out, shards: shards, window: window, lateness: lateness, want: want, logger: logger,
		mark: map[string]time.Time{}, open: map[time.Time]*windowStats{}, done: make(chan struct{}),
	}
}

// add counts the trades of one batch of a shard, then reports the windows
// that are complete.
func (a *aggregator) add(shardID string, recs []consumer.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range recs {
		var t Trade
		if err := json.Unmarshal(r.Data, &t); err != nil {
			a.bad++
			a.logger.Warn("not a trade", zap.String("shard", shardID), zap.String("seq", r.SequenceNumber), zap.Error(err))
			continue
		}
		w := windowOf(t.Time, a.window)
		if w.Before(a.reported) {
			a.late++ // or a duplicate of a trade already reported
			continue
		}
		s := a.open[w]
		if s == nil {
			s = newWindowStats(w, a.window)
			a.open[w] = s
		}
		if !s.add(t) {
			a.dups++
			continue
		}
		a.total++
		if t.Time.After(a.mark[shardID]) {
			a.mark[shardID] = t.Time
		}
	}
	a.reportUpTo(a.watermark())
	if a.want > 0 && a.total >= a.want && !a.finished {
		a.finished = true
		close(a.done)
	}
}

// watermark returns the time before which every trade has arrived: the
// earliest of the shards' latest trade times, less the allowed lateness.
// It is zero until every shard delivered a trade.
func (a *aggregator) watermark() time.Time {
	var wm time.Time
	for i, s := range a.shards {
		m, ok := a.mark[s]
		if !ok {
			return time.Time{}
		}
		if i == 0 || m.Before(wm) {
			wm = m
		}
	}
	return wm.Add(-a.lateness)
}

// reportUpTo prints, in time order, the open windows that end by wm.
func (a *aggregator) reportUpTo(wm time.Time) {
	starts := slices.SortedFunc(func(yield func(time.Time) bool) {
		for w := range a.open {
			if !yield(w) {
				return
			}
		}
	}, time.Time.Compare)
	for _, w := range starts {
		if wm.IsZero() || w.Add(a.window).After(wm) {
			return
		}
		a.print(a.open[w], "")
	}
}

// flush prints every open window, with note after its first line if the
// window may be incomplete.
func (a *aggregator) flush(note string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.open) > 0 {
		first := time.Time{}
		for w := range a.open {
			if first.IsZero() || w.Before(first) {
				first = w
			}
		}
		a.print(a.open[first], note)
	}
}

func (a *aggregator) print(s *windowStats, note string) {
	delete(a.open, s.start)
	a.reported = s.start.Add(a.window)
	a.windows++
	rep := s.report()
	if note != "" {
		rep += "  (" + note + ")\n"
	}
	_, _ = io.WriteString(a.out, rep)
}

// summary returns the closing line.
func (a *aggregator) summary() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("consumed %d trades in %d windows; dropped %d duplicates, %d late trades, %d bad records",
		a.total, a.windows, a.dups, a.late, a.bad)
}

// tradeProcessor is the record processor of one shard: it hands each batch
// to the aggregator and checkpoints it. consumer.BaseProcessor gives it the
// other methods: SHARD_END and shutdown checkpoints.
type tradeProcessor struct {
	consumer.BaseProcessor
	agg *aggregator
}

// ProcessRecords counts the batch and checkpoints after its last record.
func (p *tradeProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessRecordsInput) error {
	p.agg.add(in.ShardID, in.Records)
	return in.Checkpointer.Checkpoint(ctx)
}
