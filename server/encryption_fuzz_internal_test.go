package server

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine"
	"github.com/shoalstream/shoal/internal/kms"
)

// fuzzCrypt is a server with a key service, and an encrypted shard.
func fuzzCrypt(tb testing.TB) (*Server, *stream, *shard) {
	tb.Helper()
	keys, err := kms.Open(kms.Config{Dir: filepath.Join(tb.TempDir(), "kms"), Region: "us-east-1", AccountID: "000000000000"})
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{log: zap.NewNop()}
	s.kms.Store(keys)
	st := &stream{name: "s", id: "0123456789abcdef"}
	sh := &shard{index: 3, id: shardIDOf(3)}
	_, w, err := keys.GenerateDataKey(kms.DefaultAlias)
	if err != nil {
		tb.Fatal(err)
	}
	sh.keys.Store(noKeys.withKey(w))
	return s, st, sh
}

// Encrypted records open to what was sealed, and only in their own shard.
func TestSealOpenRecords(t *testing.T) {
	s, st, sh := fuzzCrypt(t)
	in := []engine.Record{{PartitionKey: "pk-1", Data: []byte("one")}, {PartitionKey: "k", Data: nil}, {PartitionKey: "pk-3", Data: bytes.Repeat([]byte{7}, 5000)}}
	sealed, ok, err := s.sealRecords(st, sh, in)
	if err != nil || !ok || len(sealed) != len(in) {
		t.Fatalf("sealRecords = %d records, %v, %v", len(sealed), ok, err)
	}
	entries := make([]engine.Entry, len(sealed))
	for i, r := range sealed {
		if r.PartitionKey != sealedPK || bytes.Contains(r.Data, []byte("pk-")) || bytes.Contains(r.Data, []byte("one")) {
			t.Fatalf("sealed record %d shows its plaintext: %q", i, r.Data)
		}
		entries[i] = engine.Entry{PartitionKey: r.PartitionKey, Data: r.Data}
	}
	enc, err := s.openEntries(st, sh, entries)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		if !enc[i] || e.PartitionKey != in[i].PartitionKey || !bytes.Equal(e.Data, in[i].Data) {
			t.Fatalf("record %d opened to %q %q (encrypted %v)", i, e.PartitionKey, e.Data, enc[i])
		}
	}
	// The same ciphertext in another shard does not open.
	other := &shard{index: 4, id: shardIDOf(4)}
	other.keys.Store(sh.keysOf())
	moved := []engine.Entry{{PartitionKey: sealedPK, Data: sealed[0].Data}}
	if _, err := s.openEntries(st, other, moved); !errors.Is(err, errCorruptRecord) {
		t.Fatalf("a record moved to another shard opened: %v", err)
	}
}

// FuzzOpenRecord feeds changed ciphertexts to openEntries: it never
// panics, and a changed record never opens.
func FuzzOpenRecord(f *testing.F) {
	s, st, sh := fuzzCrypt(f)
	sealed, _, err := s.sealRecords(st, sh, []engine.Record{{PartitionKey: "pk", Data: []byte("payload")}})
	if err != nil {
		f.Fatal(err)
	}
	orig := sealed[0].Data
	f.Add(orig, 0, byte(1))
	f.Add(orig[:10], 3, byte(0))
	f.Add([]byte{1}, 0, byte(0))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 1, byte(0))
	f.Fuzz(func(t *testing.T, data []byte, at int, flip byte) {
		if len(data) > 0 {
			data = bytes.Clone(data)
			data[uint(at)%uint(len(data))] ^= flip
		}
		entries := []engine.Entry{{PartitionKey: sealedPK, Data: data}}
		_, err := s.openEntries(st, sh, entries)
		if err == nil && !bytes.Equal(data, orig) {
			t.Fatalf("a changed record opened: %x", data)
		}
		if err == nil && (entries[0].PartitionKey != "pk" || string(entries[0].Data) != "payload") {
			t.Fatalf("opened to %q %q", entries[0].PartitionKey, entries[0].Data)
		}
	})
}

// BenchmarkSealOpen measures sealing and opening 100 records of 1 KiB, the
// CPU side of an encrypted PutRecords and GetRecords.
func BenchmarkSealOpen(b *testing.B) {
	s, st, sh := fuzzCrypt(b)
	recs := make([]engine.Record, 100)
	for i := range recs {
		recs[i] = engine.Record{PartitionKey: "partition-key", Data: bytes.Repeat([]byte{byte(i)}, 1024)}
	}
	sealed, _, err := s.sealRecords(st, sh, recs)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("seal", func(b *testing.B) {
		b.SetBytes(100 * 1024)
		for b.Loop() {
			if _, _, err := s.sealRecords(st, sh, recs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		b.SetBytes(100 * 1024)
		entries := make([]engine.Entry, len(sealed))
		for b.Loop() {
			for i, r := range sealed {
				entries[i] = engine.Entry{PartitionKey: r.PartitionKey, Data: r.Data}
			}
			if _, err := s.openEntries(st, sh, entries); err != nil {
				b.Fatal(err)
			}
		}
	})
}
