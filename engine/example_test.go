package engine_test

import (
	"fmt"

	"github.com/shoalstream/shoal/engine"
)

// Positions order by offset, then by the index within a batch.
func ExamplePosition_Compare() {
	a := engine.Position{Offset: 100, Index: 2}
	b := engine.Position{Offset: 100, Index: 3}
	fmt.Println(a.Compare(b), b.Compare(a), a.Compare(a), a)
	// Output: -1 1 0 100:2
}
