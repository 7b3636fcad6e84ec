package main

import (
	"math"
	"math/rand/v2"
	"time"
)

// Trade is one simulated stock trade, the record the producer puts (as
// JSON, with the ticker symbol as partition key) and the consumer reads.
type Trade struct {
	ID       int64     `json:"id"`
	Ticker   string    `json:"tickerSymbol"`
	Type     string    `json:"tradeType"` // "BUY" or "SELL"
	Price    float64   `json:"price"`
	Quantity int       `json:"quantity"`
	Time     time.Time `json:"time"` // when the simulated trade happened
}

// Trade types.
const (
	Buy  = "BUY"
	Sell = "SELL"
)

// stock is a ticker and the price its trades scatter around.
type stock struct {
	ticker string
	price  float64
}

// stocks is the simulated market.
var stocks = []stock{
	{"AAPL", 189.50}, {"AMZN", 178.20}, {"GOOG", 141.80}, {"MSFT", 415.10},
	{"NVDA", 875.30}, {"TSLA", 175.40}, {"JPM", 198.70}, {"XOM", 118.20},
	{"WMT", 60.30}, {"KO", 61.10},
}

// Generation parameters.
const (
	sellProbability = 0.4  // a trade is a sale with this probability
	maxDeviation    = 0.02 // a trade's price is within 2% of its stock's
	maxQuantity     = 1000 // a trade is for 1 to 1000 shares
)

// generator makes a deterministic sequence of trades: the same seed, start
// and tick always give the same trades. Trade i happens at start + i×tick,
// simulated time, however fast the trades are put.
type generator struct {
	rnd   *rand.Rand
	start time.Time
	tick  time.Duration
	next  int64
}

func newGenerator(seed uint64, start time.Time, tick time.Duration) *generator {
	return &generator{rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), start: start.UTC(), tick: tick}
}

// Next returns the next trade.
func (g *generator) Next() Trade {
	s := stocks[g.rnd.IntN(len(stocks))]
	typ := Buy
	if g.rnd.Float64() < sellProbability {
		typ = Sell
	}
	dev := (g.rnd.Float64()*2 - 1) * maxDeviation
	t := Trade{
		ID:       g.next,
		Ticker:   s.ticker,
		Type:     typ,
		Price:    math.Round(s.price*(1+dev)*100) / 100,
		Quantity: 1 + g.rnd.IntN(maxQuantity),
		Time:     g.start.Add(time.Duration(g.next) * g.tick),
	}
	g.next++
	return t
}
