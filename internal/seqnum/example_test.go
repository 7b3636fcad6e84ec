package seqnum_test

import (
	"fmt"

	"github.com/shoalstream/shoal/internal/seqnum"
)

// Example formats the sequence number of the third record of the batch at
// byte 4096 of shard 1 and reads it back.
func Example() {
	s := seqnum.Number{Shard: 1, Offset: 4096, Index: 2, Epoch: 0xbeef}.String()
	n, err := seqnum.Parse(s)
	fmt.Println(s, len(s), err)
	fmt.Println(n.Shard, n.Offset, n.Index, n.Epoch)
	// Output:
	// 171470411456563632614412473437075455727 39 <nil>
	// 1 4096 2 48879
}
