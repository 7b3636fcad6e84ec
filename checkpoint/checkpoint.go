package checkpoint

import (
	"fmt"
	"strings"
	"time"
)

// The sentinel checkpoints, as the KCL writes them. A Checkpoint holds one of
// them in SequenceNumber instead of a sequence number.
const (
	// TrimHorizon: no record processed yet; start at the oldest record.
	TrimHorizon = "TRIM_HORIZON"
	// Latest: no record processed yet; start after the newest record.
	Latest = "LATEST"
	// AtTimestamp: no record processed yet; start at the first record
	// that arrived at or after a time: the Checkpoint's own Timestamp if
	// it has one (a lease reset to a time, Admin.ResetLeases), else the
	// consumer's configured timestamp (the KCL keeps it in its
	// configuration, not in the lease).
	AtTimestamp = "AT_TIMESTAMP"
	// ShardEnd: every record of a closed shard has been processed; its
	// children may start.
	ShardEnd = "SHARD_END"
)

// MaxSequenceNumberDigits is the longest sequence number a checkpoint may
// hold (Kinesis: "0|([1-9]\d{0,128})").
const MaxSequenceNumberDigits = 129

// Checkpoint is a position in a shard: the last record processed, named by
// its sequence number and, for a record that came out of a KPL aggregate, its
// sub-sequence number; or one of the sentinels TrimHorizon, Latest,
// AtTimestamp and ShardEnd. The zero value is not a valid checkpoint.
//
// Checkpoints compare with ==. The Stores return Timestamp in UTC, to the
// microsecond, without a monotonic clock reading (as AtTime makes it), so
// that == holds between checkpoints read from a Store.
type Checkpoint struct {
	// SequenceNumber is a decimal sequence number or a sentinel name.
	SequenceNumber string
	// SubSequenceNumber is the record's index within its aggregate, 0 for
	// records that were not aggregated and for sentinels.
	SubSequenceNumber int64
	// Timestamp, with AtTimestamp only, is the time to start at: the
	// first record that arrived at or after it. Zero means the consumer's
	// configured timestamp.
	Timestamp time.Time
}

// AtTime returns the AtTimestamp checkpoint of t: start at the first record
// that arrived at or after t. t is kept in UTC, to the microsecond (as the
// Stores keep it).
func AtTime(t time.Time) Checkpoint {
	return Checkpoint{SequenceNumber: AtTimestamp, Timestamp: t.UTC().Truncate(time.Microsecond)}
}

// IsSentinel reports whether c is one of the four sentinels.
func (c Checkpoint) IsSentinel() bool {
	switch c.SequenceNumber {
	case TrimHorizon, Latest, AtTimestamp, ShardEnd:
		return true
	}
	return false
}

// IsInitial reports whether c is an initial position (TrimHorizon, Latest or
// AtTimestamp): the lease has no record processed yet.
func (c Checkpoint) IsInitial() bool {
	return c.IsSentinel() && c.SequenceNumber != ShardEnd
}

// IsShardEnd reports whether c is ShardEnd.
func (c Checkpoint) IsShardEnd() bool { return c.SequenceNumber == ShardEnd }

// String returns the sequence number, followed by "/" and the sub-sequence
// number when that is not zero; an AtTimestamp checkpoint with a Timestamp
// is AT_TIMESTAMP@ and the time in RFC 3339.
func (c Checkpoint) String() string {
	switch {
	case !c.Timestamp.IsZero():
		return c.SequenceNumber + "@" + c.Timestamp.Format(time.RFC3339Nano)
	case c.SubSequenceNumber == 0:
		return c.SequenceNumber
	}
	return fmt.Sprintf("%s/%d", c.SequenceNumber, c.SubSequenceNumber)
}

// Validate reports, wrapping ErrInvalid, why c is not a checkpoint.
func (c Checkpoint) Validate() error {
	switch {
	case !c.Timestamp.IsZero() && c.SequenceNumber != AtTimestamp:
		return fmt.Errorf("checkpoint %s with a timestamp: only %s has one: %w", c.SequenceNumber, AtTimestamp, ErrInvalid)
	case c.IsSentinel():
		if c.SubSequenceNumber != 0 {
			return fmt.Errorf("checkpoint %s with sub-sequence number %d: %w", c.SequenceNumber, c.SubSequenceNumber, ErrInvalid)
		}
		return nil
	case !validSequenceNumber(c.SequenceNumber):
		return fmt.Errorf("checkpoint %q is neither a sequence number nor a sentinel: %w", c.SequenceNumber, ErrInvalid)
	case c.SubSequenceNumber < 0:
		return fmt.Errorf("checkpoint %s: negative sub-sequence number %d: %w", c.SequenceNumber, c.SubSequenceNumber, ErrInvalid)
	}
	return nil
}

// Compare orders checkpoints as a shard is read: initial positions first,
// then sequence numbers as integers with ties broken by sub-sequence number,
// then ShardEnd. It returns -1, 0 or +1. The initial positions all compare
// equal to each other. Compare does not validate its operands; invalid
// sequence numbers compare as strings of digits would.
func (c Checkpoint) Compare(o Checkpoint) int {
	if r, s := c.rank(), o.rank(); r != s {
		return cmpInt(r, s)
	}
	if c.IsSentinel() {
		return 0
	}
	if r := CompareSequenceNumbers(c.SequenceNumber, o.SequenceNumber); r != 0 {
		return r
	}
	return cmpInt(c.SubSequenceNumber, o.SubSequenceNumber)
}

func (c Checkpoint) rank() int {
	switch {
	case c.IsShardEnd():
		return 2
	case c.IsInitial():
		return 0
	}
	return 1
}

// CompareSequenceNumbers compares two decimal sequence numbers as integers
// (they may be up to 129 digits, beyond any machine integer) and returns -1,
// 0 or +1.
func CompareSequenceNumbers(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return cmpInt(len(a), len(b))
	}
	return strings.Compare(a, b)
}

func cmpInt[T int | int64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// validSequenceNumber reports whether s matches 0|[1-9][0-9]{0,128}.
func validSequenceNumber(s string) bool {
	if s == "" || len(s) > MaxSequenceNumberDigits || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
