package server

import (
	"context"
	"encoding/binary"
	"errors"
	"sort"
	"time"

	"github.com/shoalstream/shoal/internal/wire"
)

// ListStreams, and the NextToken format it shares with ListShards and
// ListStreamConsumers.

// listToken is the content of a ListStreams or ListShards NextToken.
type listToken struct {
	issuedMs int64
	after    string // the last name or shard id returned
	streamID string // ListShards: the stream incarnation
	stream   string // ListShards: the stream name
	filter   string // ListShards: the filter type, shard id and timestamp
}

const tokenTTL = 300 * time.Second

func (s *Server) encodeListToken(t listToken) string {
	var b []byte
	b = binary.BigEndian.AppendUint64(b, uint64(t.issuedMs))
	for _, f := range []string{t.after, t.streamID, t.stream, t.filter} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return s.sealToken(b)
}

var errBadToken = errors.New("bad token")

func (s *Server) decodeListToken(tok string) (listToken, error) {
	b, ok := s.openToken(tok)
	if !ok || len(b) < 8 {
		return listToken{}, errBadToken
	}
	t := listToken{issuedMs: int64(binary.BigEndian.Uint64(b))}
	b = b[8:]
	fields := []*string{&t.after, &t.streamID, &t.stream, &t.filter}
	for _, f := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return listToken{}, errBadToken
		}
		*f = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	return t, nil
}

func (s *Server) checkTokenAge(t listToken) error {
	now := s.cfg.Now()
	issued := time.UnixMilli(t.issuedMs)
	if now.Sub(issued) > tokenTTL {
		return ErrExpiredNextToken.With("The timestamp sent in the NextToken is %s, which is too old. Tokens expire after %s.", issued.UTC().Format(time.RFC3339), tokenTTL)
	}
	return nil
}

func (s *Server) listStreams(ctx context.Context, in *wire.ListStreamsInput) (*wire.ListStreamsOutput, error) {
	var v validator
	v.intRange("limit", in.Limit, 1, 10000)
	v.str("exclusiveStartStreamName", in.ExclusiveStartStreamName, 1, maxStreamNameLen, streamNameRE)
	v.str("nextToken", in.NextToken, 1, maxNextTokenLen, nil)
	if err := v.err(); err != nil {
		return nil, err
	}
	limit := 100
	if in.Limit != nil {
		limit = int(*in.Limit)
	}
	after := ""
	if in.ExclusiveStartStreamName != nil {
		after = *in.ExclusiveStartStreamName
	}
	if in.NextToken != nil {
		if in.ExclusiveStartStreamName != nil {
			return nil, ErrInvalidArgument.With("NextToken and ExclusiveStartStreamName cannot be provided together.")
		}
		t, err := s.decodeListToken(*in.NextToken)
		if err != nil || t.stream != "" {
			return nil, ErrInvalidArgument.With("Invalid NextToken.")
		}
		if err := s.checkTokenAge(t); err != nil {
			return nil, err
		}
		after = t.after
	}
	account := s.callerAccount(ctx)
	var list []*stream
	for _, st := range s.snapshot() {
		if st.account == account && st.name > after {
			list = append(list, st)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	out := &wire.ListStreamsOutput{StreamNames: []string{}, StreamSummaries: []wire.StreamSummary{}}
	if len(list) > limit {
		list = list[:limit]
		out.HasMoreStreams = true
	}
	names := make([]string, 0, len(list))
	for _, st := range list {
		names = append(names, st.name)
		st.mu.RLock()
		out.StreamSummaries = append(out.StreamSummaries, wire.StreamSummary{
			StreamName: st.name, StreamARN: st.arn, StreamStatus: st.status,
			StreamModeDetails:       &wire.StreamModeDetails{StreamMode: st.mode},
			StreamCreationTimestamp: wire.Timestamp(st.created),
		})
		st.mu.RUnlock()
	}
	out.StreamNames = names
	if out.HasMoreStreams {
		tok := s.encodeListToken(listToken{issuedMs: s.cfg.Now().UnixMilli(), after: names[len(names)-1]})
		out.NextToken = &tok
	}
	return out, nil
}
