// Package hashkey maps Kinesis partition keys to the 128-bit hash key space and
// does arithmetic on hash keys: MD5 of the UTF-8 key read as an unsigned
// big-endian integer, in 0 .. 2^128-1.
//
// The server uses it to route records to shards, the producer to predict the
// shard of a record, and the consumer and fanout libraries (Range) to drop
// the user records of KPL aggregates whose hash key lies outside the shard
// that delivered them.
package hashkey
