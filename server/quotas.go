package server

// Each account's quotas of open shards (Config.ShardLimit) and on-demand
// streams (Config.OnDemandStreamLimit), claimed by reservation under
// s.namesMu (see LOCKS.md).

// reserveName claims the stream r names for a CreateStream in flight, with
// the open shards and on-demand stream it adds, checking its account's
// limits against the published streams and the other reservations.
func (s *Server) reserveName(r streamRef, shards int, onDemand bool) error {
	key := s.key(r)
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	if _, ok := s.reserved[key]; ok || s.current(key) != nil {
		return ErrResourceInUse.With("Stream %s under account %s already exists.", r.name, r.account)
	}
	open, od := s.countsLocked(r.account, nil)
	if open+shards > int(s.cfg.ShardLimit) {
		return ErrLimitExceeded.With("This request would exceed the shard limit for the account %s in %s. Current limit of shards is %d. Number of additional shards that would have resulted from this request is %d.",
			r.account, s.cfg.Region, s.cfg.ShardLimit, shards)
	}
	if onDemand && od+1 > int(s.cfg.OnDemandStreamLimit) {
		return ErrLimitExceeded.With("This request would exceed the limit of %d on-demand streams for the account %s.", s.cfg.OnDemandStreamLimit, r.account)
	}
	s.reserved[key] = reservation{account: r.account, shards: shards, onDemand: onDemand}
	return nil
}

// reservation is what a CreateStream in flight adds to its account.
type reservation struct {
	account  string
	shards   int
	onDemand bool
}

// releaseName ends a reservation of reserveName.
func (s *Server) releaseName(r streamRef) {
	s.namesMu.Lock()
	delete(s.reserved, s.key(r))
	s.namesMu.Unlock()
}

// reserveShards claims extra open shards in account for a reshard in
// flight, failing when the account's shard limit would be exceeded. The
// claim ends with release.
func (s *Server) reserveShards(account string, extra int) (release func(), err error) {
	if extra <= 0 {
		return func() {}, nil
	}
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	open, _ := s.countsLocked(account, nil)
	if open+extra > int(s.cfg.ShardLimit) {
		return nil, ErrLimitExceeded.With("This request would exceed the shard limit for the account %s in %s. Current limit of shards is %d. Number of additional shards that would have resulted from this request is %d.",
			account, s.cfg.Region, s.cfg.ShardLimit, extra)
	}
	s.pendingShards[account] += extra
	return func() {
		s.namesMu.Lock()
		if s.pendingShards[account] -= extra; s.pendingShards[account] == 0 {
			delete(s.pendingShards, account)
		}
		s.namesMu.Unlock()
	}, nil
}

// countsLocked returns account's open shards and on-demand streams,
// counting every stream of the account but except, and the creations and
// reshards in flight. The caller holds s.namesMu.
func (s *Server) countsLocked(account string, except *stream) (openShards, onDemand int) {
	for _, st := range s.snapshot() {
		if st == except || st.account != account {
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
		if r.account != account {
			continue
		}
		openShards += r.shards
		if r.onDemand {
			onDemand++
		}
	}
	return openShards + s.pendingShards[account], onDemand
}

// counts is countsLocked for callers that do not hold s.namesMu.
func (s *Server) counts(account string, except *stream) (openShards, onDemand int) {
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	return s.countsLocked(account, except)
}
