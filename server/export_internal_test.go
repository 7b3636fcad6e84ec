package server

// Test-only exports for the external tests (package server_test), in the
// spirit of export_test.go.

// AutoSplitNow runs one round of automatic splits of stream name on the
// given shards, as the auto-splitter does for shards that were hot for a
// whole window, and returns how many it split. It is deterministic: no
// clock or load measurement is involved.
func (s *Server) AutoSplitNow(name string, shardIDs ...string) int {
	st := s.current(name)
	if st == nil {
		return 0
	}
	var hot []*shard
	st.mu.RLock()
	for _, id := range shardIDs {
		if sh := st.shardByID(id); sh != nil {
			hot = append(hot, sh)
		}
	}
	st.mu.RUnlock()
	return s.autoSplit(st, hot)
}

// EnforceRetentionNow runs one round of the retention housekeeping (trims
// and the dropping of expired closed shards) at the server's clock.
func (s *Server) EnforceRetentionNow() { s.enforceRetention() }

// OperationNames lists the operations serveHTTP dispatches, SubscribeToShard
// included.
func (s *Server) OperationNames() []string {
	names := []string{"SubscribeToShard"}
	for n := range s.ops {
		names = append(names, n)
	}
	return names
}

// PlainDataKeys unwraps every data key of every shard of stream name (for
// tests that look for them where they must not be).
func (s *Server) PlainDataKeys(name string) [][]byte {
	st := s.current(name)
	if st == nil {
		return nil
	}
	st.mu.RLock()
	shards := append([]*shard(nil), st.shards...)
	st.mu.RUnlock()
	var out [][]byte
	for _, sh := range shards {
		for _, k := range sh.keysOf().keys {
			key, err := s.kms.Load().Unwrap(k.wrapped)
			if err == nil {
				out = append(out, key)
			}
		}
	}
	return out
}
