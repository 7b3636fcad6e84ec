package tail

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// FromKind says where Run starts reading.
type FromKind int

const (
	// Latest, the zero value, reads only records put after the start: each
	// shard open at the start is read from its end (LATEST), shards already
	// closed are skipped, and shards created later are read in full.
	Latest FromKind = iota
	// TrimHorizon reads every shard from its oldest record (TRIM_HORIZON).
	TrimHorizon
	// AtTimestamp reads every shard from its first record that arrived at
	// or after From.Time (AT_TIMESTAMP), shards created later included.
	AtTimestamp
	// AtSequence reads from the record with sequence number From.Sequence
	// (AT_SEQUENCE_NUMBER) in its shard, and then that shard's descendants
	// in full; no other shard.
	AtSequence
)

// From is where Run starts reading. The zero value is Latest.
type From struct {
	Kind     FromKind
	Time     time.Time // AtTimestamp
	Sequence string    // AtSequence: a decimal sequence number
}

// ParseFrom parses --from: "TRIM_HORIZON" or "LATEST" (in any case), an
// RFC 3339 time (fractional seconds allowed, e.g.
// "2025-03-04T05:06:07.089Z"), or a sequence number (decimal digits).
func ParseFrom(s string) (From, error) {
	switch strings.ToUpper(s) {
	case "LATEST":
		return From{Kind: Latest}, nil
	case "TRIM_HORIZON":
		return From{Kind: TrimHorizon}, nil
	}
	if isDigits(s) {
		if len(s) > 128 { // the API's bound on StartingSequenceNumber
			return From{}, fmt.Errorf("tail: --from %q: a sequence number has at most 128 digits", s)
		}
		return From{Kind: AtSequence, Sequence: s}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return From{}, fmt.Errorf("tail: --from %q is neither TRIM_HORIZON, LATEST, an RFC 3339 time (2006-01-02T15:04:05Z) nor a sequence number", s)
	}
	return From{Kind: AtTimestamp, Time: t}, nil
}

// String returns f as ParseFrom reads it.
func (f From) String() string {
	switch f.Kind {
	case Latest:
		return "LATEST"
	case TrimHorizon:
		return "TRIM_HORIZON"
	case AtTimestamp:
		return f.Time.Format(time.RFC3339Nano)
	case AtSequence:
		return f.Sequence
	}
	return fmt.Sprintf("From(%d)", int(f.Kind))
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// compareSeq compares two decimal sequence numbers numerically.
func compareSeq(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// startSpec is how the reading of one shard starts.
type startSpec struct {
	typ types.ShardIteratorType
	seq string    // AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER
	ts  time.Time // AT_TIMESTAMP
}

// locate returns the shard that holds sequence number seq: among shards
// whose SequenceNumberRange holds it, the first, in decreasing order of
// their starting sequence number, on which GetShardIterator
// AT_SEQUENCE_NUMBER accepts it (Kinesis answers InvalidArgumentException
// for a number of another shard). Ranges of different shards may overlap
// (an open shard's range has no end), hence the confirmation.
func (t *tailer) locate(ctx context.Context, shards []types.Shard, seq string) (string, error) {
	var cands []types.Shard
	for _, s := range shards {
		r := s.SequenceNumberRange
		if r == nil || r.StartingSequenceNumber == nil || compareSeq(*r.StartingSequenceNumber, seq) > 0 {
			continue
		}
		if r.EndingSequenceNumber != nil && compareSeq(seq, *r.EndingSequenceNumber) > 0 {
			continue
		}
		cands = append(cands, s)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		return compareSeq(*cands[i].SequenceNumberRange.StartingSequenceNumber, *cands[j].SequenceNumberRange.StartingSequenceNumber) > 0
	})
	for _, s := range cands {
		in := &kinesis.GetShardIteratorInput{
			ShardId:                s.ShardId,
			ShardIteratorType:      types.ShardIteratorTypeAtSequenceNumber,
			StartingSequenceNumber: aws.String(seq),
		}
		t.setStream(&in.StreamName, &in.StreamARN)
		_, err := t.cfg.Client.GetShardIterator(ctx, in)
		var inval *types.InvalidArgumentException
		switch {
		case err == nil:
			return *s.ShardId, nil
		case errors.As(err, &inval):
			continue
		}
		return "", fmt.Errorf("tail: find the shard of sequence number %s: GetShardIterator on %s: %w", seq, *s.ShardId, err)
	}
	return "", fmt.Errorf("tail: no shard of stream %s holds sequence number %s (past the retention period, or of another stream?); --shard names the shard", t.cfg.Stream, seq)
}
