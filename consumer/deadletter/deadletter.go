package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/consumer"
	"github.com/shoalstream/shoal/producer"
)

// Version is the envelope version Handler writes and Decode reads.
const Version = 1

// Envelope is one dead-lettered record as the dead-letter stream holds it
// (see the package documentation for its JSON form).
type Envelope struct {
	// Version is the envelope's format: Version.
	Version int `json:"version"`
	// Application is the consumer application that gave up on the record.
	Application string `json:"application,omitempty"`
	// Stream and StreamARN name the stream the record came from, as the
	// application configured it; either may be "".
	Stream    string `json:"stream,omitempty"`
	StreamARN string `json:"stream_arn,omitempty"`
	// ShardID, SequenceNumber and SubSequenceNumber say where the record
	// was in that stream: its Kinesis record, and its index in the KPL
	// aggregate (0 if it was not aggregated).
	ShardID           string `json:"shard_id"`
	SequenceNumber    string `json:"sequence_number"`
	SubSequenceNumber int64  `json:"sub_sequence_number"`
	// PartitionKey and ExplicitHashKey are the record's ("" if it had no
	// explicit hash key).
	PartitionKey    string `json:"partition_key"`
	ExplicitHashKey string `json:"explicit_hash_key,omitempty"`
	// ApproximateArrivalTimestamp is when the source stream stored it.
	ApproximateArrivalTimestamp time.Time `json:"approximate_arrival_timestamp"`
	// Aggregated reports whether it came out of a KPL aggregate.
	Aggregated bool `json:"aggregated"`
	// Error is the text of the last error ProcessRecords returned.
	Error string `json:"error"`
	// Attempts is how many ProcessRecords calls failed on the batch.
	Attempts int `json:"attempts"`
	// FailedAt is when the handler was given the record.
	FailedAt time.Time `json:"failed_at"`
	// Data is the record's data (base64 in the JSON form).
	Data []byte `json:"data"`
}

// Record returns the record as the consumer delivered it.
func (e Envelope) Record() consumer.Record {
	return consumer.Record{
		SequenceNumber: e.SequenceNumber, SubSequenceNumber: e.SubSequenceNumber,
		PartitionKey: e.PartitionKey, ExplicitHashKey: e.ExplicitHashKey, Data: e.Data,
		ApproximateArrivalTimestamp: e.ApproximateArrivalTimestamp, Aggregated: e.Aggregated,
	}
}

// Position returns the record's position in its shard, as a checkpoint
// names it.
func (e Envelope) Position() checkpoint.Checkpoint {
	return checkpoint.Checkpoint{SequenceNumber: e.SequenceNumber, SubSequenceNumber: e.SubSequenceNumber}
}

// ErrNotEnvelope: Decode was given data that is not an envelope this
// package reads.
var ErrNotEnvelope = errors.New("deadletter: not a dead-letter envelope")

// Decode reads an envelope from the data of one user record of the
// dead-letter stream (de-aggregated). Data that is not JSON, lacks the
// record's position, or has another version fails with an error matching
// ErrNotEnvelope.
func Decode(data []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrNotEnvelope, err)
	}
	switch {
	case e.Version != Version:
		return Envelope{}, fmt.Errorf("%w: version %d, want %d", ErrNotEnvelope, e.Version, Version)
	case e.ShardID == "" || e.SequenceNumber == "":
		return Envelope{}, fmt.Errorf("%w: no shard_id or sequence_number", ErrNotEnvelope)
	}
	return e, nil
}

// Producer is what Handler needs of a producer: *producer.Producer has it.
type Producer interface {
	PutRecord(ctx context.Context, r producer.UserRecord) (*producer.Pending, error)
}

var _ Producer = (*producer.Producer)(nil)

// Handler writes failed batches to a dead-letter stream: set it as
// consumer.FailurePolicy.DeadLetter. It is safe for concurrent use (the
// worker calls it from each shard's goroutine).
type Handler struct {
	p   Producer
	now func() time.Time
}

var _ consumer.DeadLetterHandler = (*Handler)(nil)

// New returns a Handler that puts the envelopes with p, a producer of the
// dead-letter stream, which stays the caller's to close.
func New(p Producer) *Handler {
	return &Handler{p: p, now: time.Now}
}

// DeadLetter puts one envelope per record of b and waits until each is
// stored, or ctx ends. It returns nil when all are stored; else the errors
// of those that are not, joined.
func (h *Handler) DeadLetter(ctx context.Context, b consumer.FailedBatch) error {
	if h.p == nil {
		return errors.New("deadletter: nil producer")
	}
	at := h.now().UTC()
	msg := ""
	if b.Err != nil {
		msg = b.Err.Error()
	}
	pending := make([]*producer.Pending, 0, len(b.Records))
	var errs []error
	for _, r := range b.Records {
		data, err := json.Marshal(Envelope{
			Version: Version, Application: b.Application, Stream: b.StreamName, StreamARN: b.StreamARN,
			ShardID: b.ShardID, SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber,
			PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey,
			ApproximateArrivalTimestamp: r.ApproximateArrivalTimestamp.UTC(), Aggregated: r.Aggregated,
			Error: msg, Attempts: b.Attempts, FailedAt: at, Data: r.Data,
		})
		if err != nil {
			// Every field marshals: not reached.
			return fmt.Errorf("deadletter: encode %s %s: %w", b.ShardID, r.Position(), err)
		}
		pd, err := h.p.PutRecord(ctx, producer.UserRecord{PartitionKey: r.PartitionKey, Data: data})
		if err != nil {
			errs = append(errs, fmt.Errorf("deadletter: put %s %s: %w", b.ShardID, r.Position(), err))
			break // the worker calls again with the whole batch anyway
		}
		pending = append(pending, pd)
	}
	for i, pd := range pending {
		if _, err := pd.Wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("deadletter: put %s %s: %w", b.ShardID, b.Records[i].Position(), err))
		}
	}
	return errors.Join(errs...)
}
