package engine

import "context"

// Catalog holds the metadata of streams, shards and consumers, one record per
// stream name, and the account record. Every change is a compare-and-set on
// the record's version, so that concurrent writers (other goroutines, or
// other processes sharing a replicated engine) never overwrite each other.
// A change is durable when the call returns nil. All methods are safe for
// concurrent use; changes of different streams do not wait for each other.
type Catalog interface {
	// Streams returns every stream record with its version, in no order.
	Streams(ctx context.Context) ([]VersionedStream, error)
	// Stream returns the record of one stream key (StreamMeta.Key), or
	// ErrNotFound.
	Stream(ctx context.Context, key string) (StreamMeta, uint64, error)
	// PutStream stores m under m.Key() if the stored version is expect, and
	// returns the new version (always > 0). expect 0 means the name must
	// not exist (else ErrExists); otherwise a missing record or another
	// version fails with ErrConflict. An error means the stored record did
	// not change: an engine that cannot undo a write that failed halfway
	// refuses every later write of the name instead (until a restart).
	PutStream(ctx context.Context, m StreamMeta, expect uint64) (uint64, error)
	// DeleteStream removes the record of key if its version is expect
	// (ErrConflict otherwise, ErrNotFound when missing).
	DeleteStream(ctx context.Context, key string, expect uint64) error
	// Account returns the account record and its version (0 and a zero
	// record if it was never stored).
	Account(ctx context.Context) (AccountMeta, uint64, error)
	// PutAccount stores the account record with the same compare-and-set
	// rule as PutStream.
	PutAccount(ctx context.Context, a AccountMeta, expect uint64) (uint64, error)
}

// VersionedStream is a stream record and its catalog version.
type VersionedStream struct {
	Meta    StreamMeta
	Version uint64
}

// AccountMeta is the account-wide record.
type AccountMeta struct {
	// Secret is the hex HMAC key of shard iterators and pagination tokens;
	// every server sharing the catalog must use the same one.
	Secret           string `json:"secret"`
	CommitmentStatus string `json:"commitmentStatus,omitempty"`
	CommitmentStart  int64  `json:"commitmentStart,omitempty"`
	CommitmentEnd    int64  `json:"commitmentEnd,omitempty"`
}

// StreamMeta is one stream's metadata: its settings, its shards and lineage,
// and its enhanced fan-out consumers. Times are unix milliseconds.
type StreamMeta struct {
	Name string `json:"name"`
	// Account owns the stream when it is not the server's own account
	// (empty); the same name in two accounts is two streams.
	Account        string            `json:"account,omitempty"`
	ID             string            `json:"id"` // incarnation: a re-created stream gets a new id; names LogID.Stream
	Created        int64             `json:"created"`
	Status         string            `json:"status"`
	Mode           string            `json:"mode"`
	RetentionHours int32             `json:"retentionHours"`
	RetentionBytes int64             `json:"retentionBytes,omitempty"` // size-based retention: the most bytes a shard's log keeps (0: none); set at start-up only
	Tags           map[string]string `json:"tags,omitempty"`
	MaxRecordKiB   int32             `json:"maxRecordKiB"`
	WarmMiBps      *int32            `json:"warmMiBps,omitempty"`
	Distribution   string            `json:"distribution"`
	Metrics        []string          `json:"metrics,omitempty"`
	TrimFloorMs    int64             `json:"trimFloorMs,omitempty"`
	NextIndex      uint32            `json:"nextIndex,omitempty"`
	ScaleTimes     []int64           `json:"scaleTimes,omitempty"`
	Shards         []ShardMeta       `json:"shards"`
	Consumers      []ConsumerMeta    `json:"consumers,omitempty"`
	// Policy is the stream's resource-based policy document, as stored by
	// PutResourcePolicy ("" when none).
	Policy string `json:"policy,omitempty"`
	// Encryption is the stream's server-side encryption: "KMS" with the
	// KeyID as StartStreamEncryption was given it, or "" for none.
	// EncryptionChanges are the unix ms of the Start/StopStreamEncryption
	// calls of the last 24 hours (AWS limits them).
	Encryption        string  `json:"encryption,omitempty"`
	KeyID             string  `json:"keyId,omitempty"`
	EncryptionChanges []int64 `json:"encryptionChanges,omitempty"`
}

// Key is the catalog key of the stream: its name for the server's own
// account, else "<account>/<name>" (a stream name never holds '/').
func (m StreamMeta) Key() string { return StreamKey(m.Account, m.Name) }

// StreamKey is the catalog key of a stream name in an account ("" for the
// server's own account).
func StreamKey(account, name string) string {
	if account == "" {
		return name
	}
	return account + "/" + name
}

// ShardMeta is one shard: its index (its log is LogID{stream ID, Index}),
// lineage, hash key range (decimal strings) and, once closed, its ending
// sequence number.
type ShardMeta struct {
	Index     uint32 `json:"index"`
	Parent    string `json:"parent,omitempty"`
	AdjParent string `json:"adjParent,omitempty"`
	Start     string `json:"start"`
	End       string `json:"end"`
	CreatedMs int64  `json:"createdMs"`
	EndSeq    string `json:"endSeq,omitempty"`
	ClosedMs  int64  `json:"closedMs,omitempty"`
	// DataKeys are the shard's data keys, wrapped by the stream's master
	// key, by the index its encrypted records name (server-side
	// encryption; the engine stores them as they are).
	DataKeys []DataKey `json:"dataKeys,omitempty"`
}

// DataKey is one wrapped data key of a shard.
type DataKey struct {
	Wrapped []byte `json:"wrapped"`
	// Current marks the key new records are encrypted with (at most the
	// last one; none while the stream writes plain text).
	Current bool `json:"current,omitempty"`
}

// ConsumerMeta is one enhanced fan-out consumer.
type ConsumerMeta struct {
	Name    string            `json:"name"`
	Created int64             `json:"created"`
	Status  string            `json:"status"`
	Tags    map[string]string `json:"tags,omitempty"`
	Policy  string            `json:"policy,omitempty"` // resource-based policy document, "" when none
}

// Clone returns a deep copy of m.
func (m StreamMeta) Clone() StreamMeta {
	c := m
	if m.Tags != nil {
		c.Tags = make(map[string]string, len(m.Tags))
		for k, v := range m.Tags {
			c.Tags[k] = v
		}
	}
	if m.WarmMiBps != nil {
		w := *m.WarmMiBps
		c.WarmMiBps = &w
	}
	c.Metrics = append([]string(nil), m.Metrics...)
	c.ScaleTimes = append([]int64(nil), m.ScaleTimes...)
	c.Shards = append([]ShardMeta(nil), m.Shards...)
	for i := range c.Shards {
		if dk := c.Shards[i].DataKeys; dk != nil {
			c.Shards[i].DataKeys = make([]DataKey, len(dk))
			for j, k := range dk {
				c.Shards[i].DataKeys[j] = DataKey{Wrapped: append([]byte(nil), k.Wrapped...), Current: k.Current}
			}
		}
	}
	c.EncryptionChanges = append([]int64(nil), m.EncryptionChanges...)
	c.Consumers = make([]ConsumerMeta, len(m.Consumers))
	for i, cm := range m.Consumers {
		c.Consumers[i] = cm
		if cm.Tags != nil {
			c.Consumers[i].Tags = make(map[string]string, len(cm.Tags))
			for k, v := range cm.Tags {
				c.Consumers[i].Tags[k] = v
			}
		}
	}
	if m.Consumers == nil {
		c.Consumers = nil
	}
	return c
}
