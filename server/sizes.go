package server

import (
	"context"
	"sort"

	"github.com/shoalstream/shoal/engine"
)

// StreamSize is the storage one stream's shard logs hold.
type StreamSize struct {
	Stream   string // the stream's name (its account's, for another account's)
	Account  string
	Bytes    int64 // stored bytes, as the engine keeps them
	Segments int   // the engine's storage units (the file engine's segment files)
}

// StreamSizes reports the storage of every stream, by stream name, when
// the engine can tell it (engine.Sizer: the file engine); nil otherwise.
// It reads the file system and is meant for a metrics scrape, not for a
// hot path.
func (s *Server) StreamSizes(ctx context.Context) ([]StreamSize, error) {
	sizer, ok := s.eng.(engine.Sizer)
	if !ok {
		return nil, nil
	}
	var out []StreamSize
	for _, st := range s.snapshot() {
		st.mu.RLock()
		shards := make([]uint32, 0, len(st.shards))
		for _, sh := range st.shards {
			shards = append(shards, sh.index)
		}
		st.mu.RUnlock()
		size := StreamSize{Stream: st.name, Account: st.account}
		for _, i := range shards {
			b, n, err := sizer.LogSize(ctx, st.logID(i))
			if err != nil {
				return nil, err
			}
			size.Bytes += b
			size.Segments += n
		}
		out = append(out, size)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Account != out[j].Account {
			return out[i].Account < out[j].Account
		}
		return out[i].Stream < out[j].Stream
	})
	return out, nil
}
