package hashkey_test

import (
	"fmt"

	"github.com/shoalstream/shoal/internal/hashkey"
)

// Example routes a partition key the way Kinesis does: MD5 of the key as a
// 128-bit number, then the shard whose range holds it.
func Example() {
	starts, _ := hashkey.SplitEvenly(2)
	k := hashkey.FromPartitionKey("customer-1")
	shard := 0
	if k.Cmp(starts[1]) >= 0 {
		shard = 1
	}
	fmt.Println(k, "-> shard", shard)
	// Output: 206123531217924687484981189258678458385 -> shard 1
}
