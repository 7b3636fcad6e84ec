// Package seqnum encodes and decodes shoal's Kinesis sequence numbers.
//
// A sequence number is a 128-bit unsigned integer written in decimal. Its top
// bit is always set, so every sequence number has exactly 39 digits and
// numeric order equals string order. The remaining bits carry where the
// record lives, so the server finds a record from its sequence number without
// a search:
//
//	bit  127      1 (fixed width marker)
//	bits 120..126 layout version (1)
//	bits  88..119 shard index (the number in shardId-000000000007)
//	bits  32..87  logical byte offset of the record's batch in the shard log
//	bits  16..31  index of the record within its batch
//	bits   0..15  stream epoch: a tag of the stream's incarnation, so that a
//	              number from a deleted stream is not mistaken for one of a
//	              new stream with the same name
//
// Within a shard, later records have larger offsets or larger indexes, so
// sequence numbers strictly increase; the shard index makes them unique
// within a stream, and makes every child shard's numbers larger than its
// parents'.
package seqnum
