package seqnum

import (
	"math/rand/v2"
	"testing"
)

func TestAppendNext(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	cases := []Number{
		{},
		{Shard: ^uint32(0), Offset: MaxOffset - 1, Index: 0xFFFE, Epoch: 0xFFFF},
		{Shard: 1, Offset: 4096, Index: 0xFFFE},
	}
	for range 20000 {
		cases = append(cases, Number{Shard: r.Uint32(), Offset: r.Uint64N(MaxOffset), Index: uint16(r.UintN(0xFFFF)), Epoch: uint16(r.Uint32())})
	}
	for _, n := range cases {
		prev := []byte(n.String())
		got := string(AppendNext([]byte("x"), prev))
		m := n
		m.Index++
		if want := "x" + m.String(); got != want {
			t.Fatalf("AppendNext(%v) = %s, want %s", n, got, want)
		}
	}
}

func TestAppendRun(t *testing.T) {
	for _, n := range []Number{
		{Shard: 3, Offset: 123456789, Index: 0, Epoch: 0xbeef},
		{Shard: 3, Offset: 1 << 40, Index: 0xFFF0, Epoch: 7}, // wraps past 0xFFFF
	} {
		for _, count := range []int{0, 1, 2, 500} {
			b := AppendRun([]byte("pre"), n, count)
			if len(b) != 3+count*Len {
				t.Fatalf("AppendRun(%v, %d): %d bytes", n, count, len(b))
			}
			for i := range count {
				m := n
				m.Index += uint16(i)
				if got, want := string(b[3+i*Len:3+(i+1)*Len]), m.String(); got != want {
					t.Fatalf("AppendRun(%v, %d)[%d] = %s, want %s", n, count, i, got, want)
				}
			}
		}
	}
}
