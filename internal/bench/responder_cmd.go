package bench

import (
	"context"
	"fmt"
	"io"

	"github.com/shoalstream/shoal/internal/bench/responder"
)

// runResponder runs "shoal bench responder": package responder's minimal
// endpoint, until ctx ends.
func runResponder(ctx context.Context, args []string, out io.Writer) error {
	fs := newFlagSet("responder", "shoal bench responder [flags]",
		"Serves a minimal Kinesis endpoint (AWS JSON 1.1) for put and get load runs: it decodes each request with\nshoal's codec and answers success with plausible shard ids and sequence numbers, but stores no record\n(GetRecords reads back as many zero-filled records as were put). It measures the load tool, HTTP and\nthe codec alone: the floor a server is compared with (scripts/bench-compare.sh).\n", out)
	addr := fs.String("addr", "127.0.0.1:4612", "address to listen on")
	shards := fs.Int("shards", 4, "shard count of a stream used before any CreateStream names it")
	if done, err := parse(fs, args); done {
		return err
	}
	return responder.Serve(ctx, *addr, *shards, func(a string) {
		_, _ = fmt.Fprintf(out, "responder listening on %s\n", a)
	})
}
