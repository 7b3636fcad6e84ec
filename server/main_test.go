package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if goroutines outlive them: every
// server a test starts must be shut down, and Shutdown must stop all of its
// background work (LOCKS.md, "Goroutines and their owners").
//
// Ignored, all on the client side of the tests' HTTP connections:
//   - the goroutines of keep-alive connections (net/http's persistConn),
//     which end once the server has closed the connection;
//   - net/http's per-request timer goroutine (setRequestCancel), which
//     ends when the response body is closed or the client's Timeout (a
//     minute) fires. aws-sdk-go-v2 (service/kinesis v1.56.12) never closes
//     the body of an error response to an event-stream operation: its
//     operation deserializer leaves event-stream bodies to the event
//     stream deserializer, which returns early on the error. Every
//     SubscribeToShard answered with an error (TestSubscribeToShardErrors
//     provokes a dozen) leaves one behind for a minute. The tests in a
//     synctest bubble (newBubbleEnv) leave none: their clients have no
//     Timeout, and their calls' ctx ends with the test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.setRequestCancel.func4"),
	)
}
