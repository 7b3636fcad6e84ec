// Package wire holds the request and response shapes of the Kinesis API as
// they travel in AWS JSON 1.1 and AWS CBOR 1.1, with explicit member names,
// and the Timestamp type that writes epoch seconds in JSON and tag-1 epoch
// milliseconds in CBOR.
package wire
