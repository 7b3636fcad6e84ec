package producer

import (
	"context"
	"sync"
	"sync/atomic"
)

// generation counts the records Put while it was current that have no
// delivered result yet. Flush starts a new generation and waits until the
// old one, and every older one, drains to zero: so it waits for exactly the
// records whose Put returned before Flush was called (and perhaps some that
// raced with it), never for records put after it.
type generation struct {
	n      atomic.Int64
	sealed atomic.Bool
	once   sync.Once
	done   chan struct{} // closed once sealed and drained
	prev   *generation   // the generation before; guarded by Producer.genMu
}

func newGeneration(prev *generation) *generation {
	return &generation{done: make(chan struct{}), prev: prev}
}

// release is called when a record of g has its result delivered.
func (g *generation) release(n int64) {
	if g.n.Add(-n) == 0 && g.sealed.Load() {
		g.once.Do(func() { close(g.done) })
	}
}

// seal marks g as no longer current.
func (g *generation) seal() {
	g.sealed.Store(true)
	if g.n.Load() == 0 {
		g.once.Do(func() { close(g.done) })
	}
}

// drain seals the current generation, starts a new one and waits until the
// sealed one and all before it are drained, or ctx ends.
func (p *Producer) drain(ctx context.Context) error {
	p.genMu.Lock()
	old := p.gen.Load()
	p.gen.Store(newGeneration(old))
	p.genMu.Unlock()
	old.seal()
	for g := old; g != nil; {
		select {
		case <-g.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.genMu.Lock()
		g = g.prev
		p.genMu.Unlock()
	}
	// Everything up to old is drained: forget the chain behind it.
	p.genMu.Lock()
	old.prev = nil
	p.genMu.Unlock()
	return nil
}
