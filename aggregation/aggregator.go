package aggregation

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/shoalstream/shoal/internal/hashkey"
)

// UserRecord is one record as the application put it.
type UserRecord struct {
	// PartitionKey is the record's partition key. The aggregator does not
	// check it: Kinesis requires 1 to 256 characters.
	PartitionKey string
	// ExplicitHashKey is the decimal hash key that overrides the partition
	// key's hash, or "" for none. The aggregator does not check it.
	ExplicitHashKey string
	// Data is the record's payload. Add keeps this slice, without copying
	// it, until Reset: do not modify it before then.
	Data []byte
}

// Record is a Kinesis record to send with PutRecord(s): an aggregated
// record, or a lone user record sent as it is.
type Record struct {
	// PartitionKey is the record's outer partition key (see OuterKey).
	PartitionKey string
	// ExplicitHashKey is the outer explicit hash key, or "" for none (see
	// OuterKey).
	ExplicitHashKey string
	// Data is the record's payload.
	Data []byte
}

// OuterKey says which partition key and explicit hash key Build gives an
// aggregated record. Both choices send the aggregate to the shard of its
// first user record; they differ in what a reader that does not deaggregate
// sees and in how many bytes the key costs.
type OuterKey int

const (
	// OuterKeyFirst, the default, uses the first user record's partition key
	// and explicit hash key ("" if it has none), as the aws-kinesis-agg
	// (Node.js) and Python aggregators do. The key's UTF-8 bytes count
	// toward Config.MaxBytes.
	OuterKeyFirst OuterKey = iota
	// OuterKeyKPL does what the KPL does (kinesis_record.cc): partition key
	// "a" (one byte, so the most room is left for data) and, as explicit
	// hash key, the first user record's hash key in decimal: its explicit
	// hash key if it has one, else the MD5 of its partition key read as a
	// big-endian 128-bit integer. A lone user record sent unaggregated also
	// gets that explicit hash key, as in the KPL.
	OuterKeyKPL
)

// String returns the constant's name.
func (k OuterKey) String() string {
	switch k {
	case OuterKeyFirst:
		return "OuterKeyFirst"
	case OuterKeyKPL:
		return "OuterKeyKPL"
	}
	return fmt.Sprintf("OuterKey(%d)", int(k))
}

// Config configures an Aggregator. The zero value is valid: every zero field
// takes the default shown.
type Config struct {
	// MaxBytes bounds the size of the Kinesis record Build returns: the
	// UTF-8 bytes of its outer PartitionKey plus its Data, exactly as
	// Kinesis counts a record against its maximum record size (the
	// ExplicitHashKey does not count). Zero means DefaultMaxBytes (1 MiB);
	// at most LimitMaxBytes (10 MiB). KPL: AggregationMaxSize, though the
	// KPL's limit covers the data only and defaults to 50 KiB.
	MaxBytes int
	// MaxRecords bounds how many user records one aggregate holds. Zero
	// means no bound beyond MaxBytes. KPL: AggregationMaxCount.
	MaxRecords int
	// AggregateSingle makes Build return an aggregated record even when it
	// holds one user record. When false (the default, as in the KPL), a lone
	// user record is returned as it is: its own partition key and data,
	// which is smaller and readable by consumers that do not deaggregate.
	// Unlike the KPL, a lone record whose data itself starts with Magic is
	// aggregated all the same, so that no consumer mistakes it for an
	// aggregate.
	AggregateSingle bool
	// OuterKey chooses the outer partition key and explicit hash key of an
	// aggregated record. Zero means OuterKeyFirst.
	OuterKey OuterKey
}

func (c Config) withDefaults() Config {
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes // Kinesis default maximum record size
	}
	return c
}

// validate returns every problem of a config with defaults applied.
func (c Config) validate() error {
	var errs []error
	if c.MaxBytes < 0 || c.MaxBytes > LimitMaxBytes {
		errs = append(errs, fmt.Errorf("MaxBytes %d not in [0, %d]", c.MaxBytes, LimitMaxBytes))
	}
	if c.MaxRecords < 0 {
		errs = append(errs, fmt.Errorf("MaxRecords %d is negative", c.MaxRecords))
	}
	if c.OuterKey != OuterKeyFirst && c.OuterKey != OuterKeyKPL {
		errs = append(errs, fmt.Errorf("unknown %v", c.OuterKey))
	}
	if len(errs) > 0 {
		return fmt.Errorf("aggregation config: %w", errors.Join(errs...))
	}
	return nil
}

// entry is one added user record: indexes into the key tables (ehk < 0 for
// none) and the caller's data.
type entry struct {
	data    []byte
	pk, ehk int
}

// Aggregator packs user records into one aggregated Kinesis record. It
// computes the exact size of the record it would build as records are
// added, in O(1) per record, so that it never builds a record larger than
// Config.MaxBytes.
//
// Use it as: Add until ErrFull, Build, send, Reset, Add the record again.
// An Aggregator is not safe for concurrent use.
type Aggregator struct {
	cfg Config

	pkIndex  map[string]int // partition key -> index in pks
	ehkIndex map[string]int // explicit hash key -> index in ehks
	pks      []string
	ehks     []string
	recs     []entry
	pbSize   int // exact size of the protobuf AggregatedRecord of recs

	// lastPK is the partition key of the last added record and lastPKIndex
	// its table index: a cheaper lookup than the map for runs of one key.
	lastPK      string
	lastPKIndex int
}

// NewAggregator returns an empty Aggregator, or an error if cfg is invalid.
func NewAggregator(cfg Config) (*Aggregator, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Aggregator{
		cfg:      cfg,
		pkIndex:  make(map[string]int),
		ehkIndex: make(map[string]int),
	}, nil
}

// Config returns the aggregator's configuration, with defaults applied.
func (a *Aggregator) Config() Config { return a.cfg }

// Len returns the number of user records added since the last Reset.
func (a *Aggregator) Len() int { return len(a.recs) }

// Size returns the exact size, outer partition key plus data, of the record
// Build would return now; 0 when the aggregator is empty.
func (a *Aggregator) Size() int {
	switch {
	case len(a.recs) == 0:
		return 0
	case len(a.recs) == 1 && a.plain(a.recs[0].data):
		return len(a.pks[a.recs[0].pk]) + len(a.recs[0].data)
	}
	return a.outerKeyLen(len(a.pks[a.recs[0].pk])) + Overhead + a.pbSize
}

// plan is what adding a record would do: its table indexes, whether they
// are new entries, and how many bytes the protobuf message would grow by.
type plan struct {
	pk, ehk       int // ehk < 0: no explicit hash key
	newPK, newEHK bool
	delta         int
}

// plan looks r's keys up in the tables: a map lookup or two, so O(1).
func (a *Aggregator) plan(r UserRecord) plan {
	var p plan
	if i, ok := a.lookupPK(r.PartitionKey); ok {
		p.pk = i
	} else {
		p.pk, p.newPK = len(a.pks), true
		p.delta += sizeField(len(r.PartitionKey))
	}
	p.ehk = -1
	if r.ExplicitHashKey != "" {
		if i, ok := a.ehkIndex[r.ExplicitHashKey]; ok {
			p.ehk = i
		} else {
			p.ehk, p.newEHK = len(a.ehks), true
			p.delta += sizeField(len(r.ExplicitHashKey))
		}
	}
	p.delta += sizeField(sizeRecord(p.pk, p.ehk, len(r.Data)))
	return p
}

func (a *Aggregator) lookupPK(pk string) (int, bool) {
	if len(a.recs) > 0 && pk == a.lastPK {
		return a.lastPKIndex, true
	}
	i, ok := a.pkIndex[pk]
	return i, ok
}

// outerKeyLen returns the size of an aggregate's outer partition key, given
// the length of its first user record's partition key.
func (a *Aggregator) outerKeyLen(firstPKLen int) int {
	if a.cfg.OuterKey == OuterKeyKPL {
		return len(KPLPartitionKey)
	}
	return firstPKLen
}

// sizeAfter returns the size Build would return after r is added as p says.
func (a *Aggregator) sizeAfter(r UserRecord, p plan) int {
	if len(a.recs) == 0 {
		return a.sizeAlone(r)
	}
	return a.outerKeyLen(len(a.pks[a.recs[0].pk])) + Overhead + a.pbSize + p.delta
}

// sizeAlone returns the size Build would return for r alone.
func (a *Aggregator) sizeAlone(r UserRecord) int {
	if a.plain(r.Data) {
		return len(r.PartitionKey) + len(r.Data)
	}
	n := sizeField(len(r.PartitionKey))
	ehk := -1
	if r.ExplicitHashKey != "" {
		n += sizeField(len(r.ExplicitHashKey))
		ehk = 0
	}
	n += sizeField(sizeRecord(0, ehk, len(r.Data)))
	return a.outerKeyLen(len(r.PartitionKey)) + Overhead + n
}

// plain reports whether a lone user record with this data is sent as it is.
// Data that starts with Magic is wrapped in an aggregate even then: sent
// plain, it could be taken for an aggregate by a consumer (aws-kinesis-agg
// looks at the first four bytes only).
func (a *Aggregator) plain(data []byte) bool {
	return !a.cfg.AggregateSingle && !bytes.HasPrefix(data, Magic[:])
}

// SizeWith returns the exact size, outer partition key plus data, of the
// record Build would return if r were added now. It does not check limits.
func (a *Aggregator) SizeWith(r UserRecord) int {
	if len(a.recs) == 0 {
		return a.sizeAlone(r)
	}
	return a.sizeAfter(r, a.plan(r))
}

// Add adds r to the aggregate. It returns ErrFull, and adds nothing, if the
// record would make the aggregate larger than Config.MaxBytes or hold more
// than Config.MaxRecords records: Build and Reset, then Add r again. It
// returns ErrTooLarge (wrapped) if r alone would exceed Config.MaxBytes;
// send such a record some other way or reject it. An empty aggregator
// accepts every record that is not too large.
//
// Add keeps r.Data, without copying it, until Reset.
func (a *Aggregator) Add(r UserRecord) error {
	var p plan
	if len(a.recs) > 0 {
		p = a.plan(r)
		full := a.cfg.MaxRecords > 0 && len(a.recs) >= a.cfg.MaxRecords
		if full || a.sizeAfter(r, p) > a.cfg.MaxBytes {
			if alone := a.sizeAlone(r); alone > a.cfg.MaxBytes {
				return a.tooLarge(alone)
			}
			return ErrFull
		}
	} else {
		if alone := a.sizeAlone(r); alone > a.cfg.MaxBytes {
			return a.tooLarge(alone)
		}
		p = a.plan(r)
	}
	if p.newPK {
		a.pkIndex[r.PartitionKey] = p.pk
		a.pks = append(a.pks, r.PartitionKey)
	}
	if p.newEHK {
		a.ehkIndex[r.ExplicitHashKey] = p.ehk
		a.ehks = append(a.ehks, r.ExplicitHashKey)
	}
	a.lastPK, a.lastPKIndex = r.PartitionKey, p.pk
	a.recs = append(a.recs, entry{data: r.Data, pk: p.pk, ehk: p.ehk})
	a.pbSize += p.delta
	return nil
}

func (a *Aggregator) tooLarge(size int) error {
	return fmt.Errorf("%w: %d bytes alone, limit %d", ErrTooLarge, size, a.cfg.MaxBytes)
}

// Build returns the Kinesis record holding every user record added since
// the last Reset, in order. It does not reset the aggregator. With no
// records it returns ErrEmpty.
//
// With more than one user record the record is aggregated: its Data is a
// new slice holding Magic, the protobuf message and its MD5, and its keys
// are chosen by Config.OuterKey. A lone user record is returned as it is,
// with its own partition key, explicit hash key (see OuterKeyKPL) and Data
// slice (not copied), unless Config.AggregateSingle is set or its data
// starts with Magic.
//
// len(PartitionKey)+len(Data) of the result always equals Size.
func (a *Aggregator) Build() (Record, error) {
	if len(a.recs) == 0 {
		return Record{}, ErrEmpty
	}
	first := a.recs[0]
	firstPK := a.pks[first.pk]
	firstEHK := ""
	if first.ehk >= 0 {
		firstEHK = a.ehks[first.ehk]
	}
	if a.cfg.OuterKey == OuterKeyKPL && firstEHK == "" {
		firstEHK = hashkey.FromPartitionKey(firstPK).String()
	}
	if len(a.recs) == 1 && a.plain(first.data) {
		return Record{PartitionKey: firstPK, ExplicitHashKey: firstEHK, Data: first.data}, nil
	}
	out := Record{PartitionKey: firstPK, ExplicitHashKey: firstEHK}
	if a.cfg.OuterKey == OuterKeyKPL {
		out.PartitionKey = KPLPartitionKey
	}
	out.Data = a.appendAggregate(make([]byte, 0, Overhead+a.pbSize))
	if len(out.Data) != Overhead+a.pbSize {
		// Unreachable unless the size bookkeeping is wrong; the tests check it.
		return Record{}, fmt.Errorf("aggregation: built %d bytes, computed %d", len(out.Data), Overhead+a.pbSize)
	}
	return out, nil
}

// appendAggregate appends Magic, the protobuf message and its MD5 to b.
// Fields are written in field-number order, as the KPL and protobuf
// serializers do, so the bytes match theirs for the same input.
func (a *Aggregator) appendAggregate(b []byte) []byte {
	b = append(b, Magic[:]...)
	start := len(b)
	for _, k := range a.pks {
		b = protowire.AppendTag(b, fieldPartitionKeyTable, protowire.BytesType)
		b = protowire.AppendString(b, k)
	}
	for _, k := range a.ehks {
		b = protowire.AppendTag(b, fieldExplicitHashKeyTable, protowire.BytesType)
		b = protowire.AppendString(b, k)
	}
	for _, e := range a.recs {
		b = protowire.AppendTag(b, fieldRecords, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeRecord(e.pk, e.ehk, len(e.data))))
		b = protowire.AppendTag(b, fieldPartitionKeyIndex, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(e.pk))
		if e.ehk >= 0 {
			b = protowire.AppendTag(b, fieldExplicitHashKeyIndex, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(e.ehk))
		}
		b = protowire.AppendTag(b, fieldData, protowire.BytesType)
		b = protowire.AppendBytes(b, e.data)
	}
	sum := md5.Sum(b[start:])
	return append(b, sum[:]...)
}

// Reset empties the aggregator for reuse, keeping its allocated memory but
// no reference to added data.
func (a *Aggregator) Reset() {
	clear(a.recs)
	a.recs = a.recs[:0]
	clear(a.pks)
	a.pks = a.pks[:0]
	clear(a.ehks)
	a.ehks = a.ehks[:0]
	clear(a.pkIndex)
	clear(a.ehkIndex)
	a.pbSize = 0
	a.lastPK, a.lastPKIndex = "", 0
}
