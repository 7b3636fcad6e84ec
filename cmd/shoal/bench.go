package main

import (
	"context"
	"io"

	"github.com/shoalstream/shoal/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	return bench.Main(ctx, args, stdout)
}
