package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shoalstream/shoal/internal/tail"
)

// runTail is "shoal tail": flags to a tail.Config, then tail.Run until ctx
// is done (SIGINT/SIGTERM), which is a clean end.
func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shoal tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	var (
		stream   = fs.String("stream", "", "stream name or ARN (required)")
		from     = fs.String("from", "LATEST", "where to start: LATEST (records put from now on), TRIM_HORIZON (every record kept), an RFC 3339 time (records that arrived at or after it), or a sequence number (that record in its shard, then the shard's descendants)")
		shard    = fs.String("shard", "", "follow only this shard and its descendants (with a sequence number --from: the shard holding it; found from ListShards when not given)")
		deagg    = fs.Bool("deaggregate", false, "print the user records of KPL aggregated records, with their sub-sequence numbers")
		format   = fs.String("format", "text", "text (a line per record: shard, sequence number, arrival time, quoted partition key, escaped data), json (an object per line, data in base64) or hex (a header line, then a hex dump of the data)")
		endpoint = fs.String("endpoint", "", "Kinesis endpoint URL (e.g. http://127.0.0.1:4567); empty: AWS's endpoint for --region")
		regionF  = fs.String("region", region, "AWS region (from $AWS_REGION when set)")
		profile  = fs.String("profile", "", "AWS shared config profile to sign with; empty: the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws files...), else placeholder credentials, which only a server without --auth-config accepts")
		poll     = fs.Duration("poll-interval", tail.DefaultPollInterval, "wait between GetRecords calls on a shard that is caught up (calls on one shard are at least 200ms apart in any case)")
	)
	fs.Usage = func() {
		_, _ = fmt.Fprintln(stderr, "usage: shoal tail --stream NAME [flags]")
		_, _ = fmt.Fprintln(stderr, "Follows a stream across reshards (parents before children) and prints each record once, until interrupted.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("tail: unexpected arguments %q", fs.Args())
	}
	if *stream == "" {
		fs.Usage()
		return errors.New("tail: --stream is required")
	}
	start, err := tail.ParseFrom(*from)
	if err != nil {
		return err
	}
	f, err := tail.ParseFormat(*format)
	if err != nil {
		return err
	}
	if *poll <= 0 {
		return fmt.Errorf("tail: --poll-interval %v is not positive", *poll)
	}
	client, err := tail.NewClient(ctx, *endpoint, *regionF, *profile)
	if err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while resolving credentials
		}
		return err
	}
	return tail.Run(ctx, tail.Config{
		Client:       client,
		Stream:       *stream,
		From:         start,
		Shard:        *shard,
		Deaggregate:  *deagg,
		Format:       f,
		Out:          stdout,
		Log:          stderr,
		PollInterval: *poll,
		CallInterval: tail.DefaultCallInterval,
		MaxBackoff:   10 * time.Second,
	})
}
