package tokenbucket_test

import (
	"fmt"
	"time"

	"github.com/shoalstream/shoal/internal/tokenbucket"
)

// Example limits writes to 1000 bytes per second, admitting one write larger
// than a second's worth when the bucket is full, as Kinesis does.
func Example() {
	now := time.Unix(0, 0)
	b := tokenbucket.New(1000, now)
	for _, n := range []float64{1500, 10} {
		b.Refill(now)
		if !b.Enough(n) {
			fmt.Printf("%v bytes: wait %v\n", n, b.Wait(n))
			continue
		}
		b.Take(n)
		fmt.Printf("%v bytes: sent, %v tokens left\n", n, b.Tokens())
	}
	now = now.Add(510 * time.Millisecond)
	b.Refill(now)
	fmt.Println("after 510ms:", b.Enough(10))
	// Output:
	// 1500 bytes: sent, -500 tokens left
	// 10 bytes: wait 510ms
	// after 510ms: true
}
