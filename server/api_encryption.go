package server

import (
	"context"
	"time"

	"github.com/shoalstream/shoal/internal/wire"
)

// StartStreamEncryption and StopStreamEncryption (encryption.go has the
// records' side).

// maxEncryptionChanges is how many times a day a stream's encryption may be
// started (with a new key) or stopped: 25 each in a rolling 24 hours. shoal
// counts both kinds together against 2 × 25.
const maxEncryptionChanges = 50

const maxKeyIDLen = 2048

func (s *Server) startStreamEncryption(ctx context.Context, in *wire.StreamEncryptionInput) (*wire.Empty, error) {
	return s.changeEncryption(ctx, in, true)
}

func (s *Server) stopStreamEncryption(ctx context.Context, in *wire.StreamEncryptionInput) (*wire.Empty, error) {
	return s.changeEncryption(ctx, in, false)
}

func (s *Server) changeEncryption(ctx context.Context, in *wire.StreamEncryptionInput, start bool) (*wire.Empty, error) {
	st, err := s.validStream(ctx, in.StreamRef, func() (v validator) {
		if v.required("encryptionType", in.EncryptionType != nil) {
			v.enum("encryptionType", in.EncryptionType, encryptionKMS, encryptionNone)
		}
		v.reqStr("keyId", in.KeyID, 1, maxKeyIDLen, nil)
		return v
	})
	if err != nil {
		return nil, err
	}
	if *in.EncryptionType != encryptionKMS {
		return nil, ErrInvalidArgument.With("Encryption type %s is not supported; the only valid value is KMS.", *in.EncryptionType)
	}
	keys, err := s.keyring()
	if err != nil {
		return nil, err
	}
	key := *in.KeyID
	if _, err := keys.Resolve(key); err != nil {
		return nil, kmsError(err)
	}
	// A data key per open shard, made before the stream is locked (the key
	// service may be slow); Stop needs none.
	st.mu.RLock()
	open := append([]*shard(nil), st.open...)
	st.mu.RUnlock()
	wrapped := map[*shard][]byte{}
	if start {
		for _, sh := range open {
			_, w, err := keys.GenerateDataKey(key)
			if err != nil {
				return nil, kmsError(err)
			}
			wrapped[sh] = w
		}
	}
	now := s.cfg.Now()
	err = s.mutateStream(st, false, func() (func(), error) {
		if !start && st.encKeyID == "" {
			return nil, ErrInvalidArgument.With("Stream %s under account %s is not encrypted.", st.name, st.account)
		}
		recent := recentTimes(st.encChanges, now)
		if len(recent) >= maxEncryptionChanges {
			return nil, ErrLimitExceeded.With("Stream %s under account %s has had its encryption changed %d times in the last 24 hours, the limit.", st.name, st.account, len(recent))
		}
		for _, sh := range st.open {
			if start && wrapped[sh] == nil {
				return nil, ErrResourceInUse.With("Stream %s under account %s was resharded by another request at the same time; retry.", st.name, st.account)
			}
		}
		oldKey, oldChanges, oldStatus := st.encKeyID, st.encChanges, st.status
		oldKeys := map[*shard]*shardKeys{}
		for _, sh := range st.open {
			k := sh.keysOf()
			oldKeys[sh] = k
			if start {
				sh.keys.Store(k.withKey(wrapped[sh]))
			} else {
				sh.keys.Store(k.plain())
			}
		}
		st.encChanges = append(recent, now.UnixMilli())
		st.encKeyID = ""
		if start {
			st.encKeyID = key
		}
		if s.cfg.UpdateDelay > 0 {
			st.status = statusUpdating
		}
		return func() {
			st.encKeyID, st.encChanges, st.status = oldKey, oldChanges, oldStatus
			for sh, k := range oldKeys {
				sh.keys.Store(k)
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	if s.cfg.UpdateDelay > 0 {
		s.afterDelay(st, s.cfg.UpdateDelay, statusUpdating, statusActive)
	}
	return &wire.Empty{}, nil
}

// recentTimes returns the unix ms times of the last 24 hours before now.
func recentTimes(times []int64, now time.Time) []int64 {
	cutoff := now.Add(-24 * time.Hour).UnixMilli()
	var out []int64
	for _, t := range times {
		if t > cutoff {
			out = append(out, t)
		}
	}
	return out
}

// newShardKeys gives a shard that a reshard or CreateStream makes for st the
// data key of st's encryption, if it is encrypted. The caller holds st.ctl.
func (s *Server) newShardKeys(st *stream, sh *shard) error {
	st.mu.RLock()
	key := st.encKeyID
	st.mu.RUnlock()
	if key == "" {
		sh.keys.Store(&noKeys)
		return nil
	}
	keys, err := s.keyring()
	if err != nil {
		return err
	}
	_, w, err := keys.GenerateDataKey(key)
	if err != nil {
		return kmsError(err)
	}
	sh.keys.Store(noKeys.withKey(w))
	return nil
}
