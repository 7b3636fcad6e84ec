package server

// The account's quotas of open shards (Config.ShardLimit) and on-demand
// streams (Config.OnDemandStreamLimit), claimed by reservation under
// s.namesMu (see LOCKS.md).

// reserveName claims name for a CreateStream in flight, with the open shards
// and on-demand stream it adds, checking the account's limits against the
// published streams and the other reservations.
func (s *Server) reserveName(name string, shards int, onDemand bool) error {
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	if _, ok := s.reserved[name]; ok || s.current(name) != nil {
		return ErrResourceInUse.With("Stream %s under account %s already exists.", name, s.cfg.AccountID)
	}
	open, od := s.countsLocked(nil)
	if open+shards > int(s.cfg.ShardLimit) {
		return ErrLimitExceeded.With("This request would exceed the shard limit for the account %s in %s. Current limit of shards is %d. Number of additional shards that would have resulted from this request is %d.",
			s.cfg.AccountID, s.cfg.Region, s.cfg.ShardLimit, shards)
	}
	if onDemand && od+1 > int(s.cfg.OnDemandStreamLimit) {
		return ErrLimitExceeded.With("This request would exceed the limit of %d on-demand streams for the account %s.", s.cfg.OnDemandStreamLimit, s.cfg.AccountID)
	}
	s.reserved[name] = reservation{shards: shards, onDemand: onDemand}
	return nil
}

// reservation is what a CreateStream in flight adds to the account.
type reservation struct {
	shards   int
	onDemand bool
}

// releaseName ends a reservation of reserveName.
func (s *Server) releaseName(name string) {
	s.namesMu.Lock()
	delete(s.reserved, name)
	s.namesMu.Unlock()
}

// reserveShards claims extra open shards for a reshard in flight, failing
// when the account's shard limit would be exceeded. The claim ends with
// release.
func (s *Server) reserveShards(extra int) (release func(), err error) {
	if extra <= 0 {
		return func() {}, nil
	}
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	open, _ := s.countsLocked(nil)
	if open+extra > int(s.cfg.ShardLimit) {
		return nil, ErrLimitExceeded.With("This request would exceed the shard limit for the account %s in %s. Current limit of shards is %d. Number of additional shards that would have resulted from this request is %d.",
			s.cfg.AccountID, s.cfg.Region, s.cfg.ShardLimit, extra)
	}
	s.pendingShards += extra
	return func() {
		s.namesMu.Lock()
		s.pendingShards -= extra
		s.namesMu.Unlock()
	}, nil
}

// countsLocked returns the account's open shards and on-demand streams,
// counting every stream but except, the creations and reshards in flight.
// The caller holds s.namesMu.
func (s *Server) countsLocked(except *stream) (openShards, onDemand int) {
	for _, st := range s.snapshot() {
		if st == except {
			continue
		}
		st.mu.RLock()
		openShards += len(st.open)
		if st.mode == modeOnDemand {
			onDemand++
		}
		st.mu.RUnlock()
	}
	for _, r := range s.reserved {
		openShards += r.shards
		if r.onDemand {
			onDemand++
		}
	}
	return openShards + s.pendingShards, onDemand
}

// counts is countsLocked for callers that do not hold s.namesMu.
func (s *Server) counts(except *stream) (openShards, onDemand int) {
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	return s.countsLocked(except)
}
