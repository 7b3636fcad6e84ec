package main

import (
	"fmt"
	"strings"
	"time"
)

// windowStats are the statistics of the trades of one window, those of the
// AWS stock trade tutorial: the most popular stock being bought and being
// sold (by number of trades), and the largest buy and sell orders (by
// quantity).
type windowStats struct {
	start  time.Time
	length time.Duration
	trades int
	count  map[string]map[string]int // trade type -> ticker -> trades
	large  map[string]Trade          // trade type -> largest order
	ids    map[int64]bool            // trades counted, to drop duplicates
}

func newWindowStats(start time.Time, length time.Duration) *windowStats {
	return &windowStats{
		start: start, length: length,
		count: map[string]map[string]int{Buy: {}, Sell: {}},
		large: map[string]Trade{},
		ids:   map[int64]bool{},
	}
}

// add counts t and reports true, or reports false if t was counted before
// (a duplicate: delivery is at least once).
func (s *windowStats) add(t Trade) bool {
	if s.ids[t.ID] {
		return false
	}
	s.ids[t.ID] = true
	s.trades++
	if s.count[t.Type] == nil {
		s.count[t.Type] = map[string]int{}
	}
	s.count[t.Type][t.Ticker]++
	// Ties go to the earlier trade, so that the result does not depend on
	// the order trades arrive in.
	if cur, ok := s.large[t.Type]; !ok || t.Quantity > cur.Quantity || (t.Quantity == cur.Quantity && t.ID < cur.ID) {
		s.large[t.Type] = t
	}
	return true
}

// mostPopular returns the ticker with the most trades of the type (ties go
// to the alphabetically first) and its count, or "" if there is none.
func (s *windowStats) mostPopular(typ string) (string, int) {
	best, n := "", 0
	for ticker, c := range s.count[typ] {
		if c > n || (c == n && ticker < best) {
			best, n = ticker, c
		}
	}
	return best, n
}

// report formats the statistics as the consumer prints them.
func (s *windowStats) report() string {
	var b strings.Builder
	end := s.start.Add(s.length)
	fmt.Fprintf(&b, "window %s to %s: %d trades\n", s.start.Format("2006-01-02 15:04:05"), end.Format("15:04:05 MST"), s.trades)
	for _, typ := range []string{Buy, Sell} {
		verb, noun := "bought", "buys"
		if typ == Sell {
			verb, noun = "sold", "sells"
		}
		if ticker, n := s.mostPopular(typ); n > 0 {
			fmt.Fprintf(&b, "  most popular stock being %s: %s, %d %s\n", verb, ticker, n, noun)
		} else {
			fmt.Fprintf(&b, "  most popular stock being %s: none\n", verb)
		}
	}
	for _, typ := range []string{Buy, Sell} {
		if t, ok := s.large[typ]; ok {
			fmt.Fprintf(&b, "  largest %s order: #%d %s %d %s @ %.2f\n", strings.ToLower(typ), t.ID, t.Type, t.Quantity, t.Ticker, t.Price)
		} else {
			fmt.Fprintf(&b, "  largest %s order: none\n", strings.ToLower(typ))
		}
	}
	return b.String()
}

// windowOf returns the start of the window of length d that holds t.
func windowOf(t time.Time, d time.Duration) time.Time { return t.UTC().Truncate(d) }
