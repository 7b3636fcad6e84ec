package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"

	"github.com/shoalstream/shoal/engine"
)

// iteratorTTL is how long a shard iterator stays valid, as in Kinesis.
const iteratorTTLMillis = 300000

// iterator is the decoded content of a shard iterator: where to read next in
// which shard of which incarnation of a stream, and when it was issued.
type iterator struct {
	streamID string // 16 hex digits
	stream   string
	shard    uint32
	pos      engine.Position
	issuedMs int64
}

const (
	iterVersion = 1
	iterMACLen  = 16
	iterFixed   = 1 + 8 + 4 + 8 + 2 + 8 + 1 // version, stream id, shard, offset, index, issued, name length
)

var errBadIterator = errors.New("bad iterator")

// encodeIterator seals it into an opaque, tamper-evident string:
// base64url(fields || HMAC-SHA256(secret, fields)[:16]).
func (s *Server) encodeIterator(it iterator) string {
	var b [iterFixed + 255 + iterMACLen]byte
	b[0] = iterVersion
	_, _ = hex.Decode(b[1:9], []byte(it.streamID))
	binary.BigEndian.PutUint32(b[9:], it.shard)
	binary.BigEndian.PutUint64(b[13:], it.pos.Offset)
	binary.BigEndian.PutUint16(b[21:], it.pos.Index)
	binary.BigEndian.PutUint64(b[23:], uint64(it.issuedMs))
	b[31] = byte(len(it.stream))
	n := iterFixed + copy(b[iterFixed:], it.stream)
	mac := hmac.New(sha256.New, s.secret)
	mac.Write(b[:n])
	n += copy(b[n:], mac.Sum(nil)[:iterMACLen])
	return base64.RawURLEncoding.EncodeToString(b[:n])
}

// decodeIterator opens a string made by encodeIterator; anything else, or a
// string whose MAC does not match, is errBadIterator.
func (s *Server) decodeIterator(str string) (iterator, error) {
	if len(str) > maxIteratorLen {
		return iterator{}, errBadIterator
	}
	b, err := base64.RawURLEncoding.DecodeString(str)
	if err != nil || len(b) < iterFixed+iterMACLen || b[0] != iterVersion {
		return iterator{}, errBadIterator
	}
	n := iterFixed + int(b[31])
	if len(b) != n+iterMACLen {
		return iterator{}, errBadIterator
	}
	mac := hmac.New(sha256.New, s.secret)
	mac.Write(b[:n])
	if !hmac.Equal(mac.Sum(nil)[:iterMACLen], b[n:]) {
		return iterator{}, errBadIterator
	}
	return iterator{
		streamID: hex.EncodeToString(b[1:9]),
		shard:    binary.BigEndian.Uint32(b[9:]),
		pos:      engine.Position{Offset: binary.BigEndian.Uint64(b[13:]), Index: binary.BigEndian.Uint16(b[21:])},
		issuedMs: int64(binary.BigEndian.Uint64(b[23:])),
		stream:   string(b[iterFixed:n]),
	}, nil
}

// sealToken and openToken protect pagination tokens (ListShards, ListStreams)
// the same way: payload || MAC, base64url.
func (s *Server) sealToken(payload []byte) string {
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte("token:"))
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(append(payload, mac.Sum(nil)[:iterMACLen]...))
}

func (s *Server) openToken(tok string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < iterMACLen {
		return nil, false
	}
	payload := b[:len(b)-iterMACLen]
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte("token:"))
	mac.Write(payload)
	if !hmac.Equal(mac.Sum(nil)[:iterMACLen], b[len(b)-iterMACLen:]) {
		return nil, false
	}
	return payload, true
}
