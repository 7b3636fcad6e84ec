package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// The data viewer's cursor: where each shard of a read stands, sealed with
// an HMAC of the console's (so that a cursor is only ever one this console
// handed out) and opaque to the page. It holds no secret: every read it
// leads to is still an SDK call of the caller's, which the server
// authorizes.

// Shard states in a cursor.
const (
	statePending int8 = iota // waits for its parents to be read to their end
	stateActive              // being read
	stateDone                // read to its end; kept while a pending child names it
)

// cursor is where a whole-stream or one-shard read stands.
type cursor struct {
	Stream string `json:"s"`
	// Single reads one shard only: its children are not followed.
	Single bool `json:"o,omitempty"`
	// At is the AT_TIMESTAMP of the read (ms), where children start too;
	// zero: they start at TRIM_HORIZON.
	At     int64       `json:"a,omitempty"`
	Shards []*shardPos `json:"h"`
}

// shardPos is one shard's place in a read. Its position is Iter when set
// (a shard iterator of the server's, valid for five minutes); otherwise,
// and when Iter has expired, the GetShardIterator of Type, Seq and At,
// dropping the first Skip user records of the record at Seq.
type shardPos struct {
	ID      string   `json:"i"`
	State   int8     `json:"t"`
	Parents []string `json:"p,omitempty"`
	Type    string   `json:"y,omitempty"`
	Seq     string   `json:"q,omitempty"`
	At      int64    `json:"a,omitempty"`
	Skip    int64    `json:"k,omitempty"`
	Iter    string   `json:"it,omitempty"`
}

// childStart is where a child shard found during the read starts.
func (c *cursor) childStart(p *shardPos) {
	if c.At > 0 {
		p.Type, p.At = string(types.ShardIteratorTypeAtTimestamp), c.At
		return
	}
	p.Type = string(types.ShardIteratorTypeTrimHorizon)
}

// seal encodes the cursor for the page.
func (c *Console) seal(cur *cursor) string {
	b, _ := json.Marshal(cur) // plain structs: never fails
	mac := hmac.New(sha256.New, c.cursorKey)
	mac.Write(b)
	return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// unseal decodes a cursor of this console for stream, or fails with
// ConsoleBadRequest.
func (c *Console) unseal(s, stream string) (*cursor, error) {
	bad := badRequest("The cursor is not one this console handed out for stream %s (the console may have restarted): start the read again.", stream)
	body, sig, ok := strings.Cut(s, ".")
	if !ok {
		return nil, bad
	}
	b, err1 := base64.RawURLEncoding.DecodeString(body)
	m, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return nil, bad
	}
	mac := hmac.New(sha256.New, c.cursorKey)
	mac.Write(b)
	if !hmac.Equal(mac.Sum(nil)[:16], m) {
		return nil, bad
	}
	var cur cursor
	if err := json.Unmarshal(b, &cur); err != nil || cur.Stream != stream {
		return nil, bad
	}
	return &cur, nil
}
