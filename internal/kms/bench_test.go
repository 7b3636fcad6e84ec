package kms_test

import (
	"testing"

	"github.com/shoalstream/shoal/internal/kms"
)

// BenchmarkGenerateDataKey: a fresh data key (crypto/rand) wrapped under the
// default key, resolved by alias.
func BenchmarkGenerateDataKey(b *testing.B) {
	k := newEnv(b, "").open()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := k.GenerateDataKey(kms.DefaultAlias); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnwrap: unwrapping one blob, as the server does when it opens an
// encrypted shard log.
func BenchmarkUnwrap(b *testing.B) {
	k := newEnv(b, "").open()
	_, w := mustGenerate(b, k, kms.DefaultAlias)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Unwrap(w); err != nil {
			b.Fatal(err)
		}
	}
}
