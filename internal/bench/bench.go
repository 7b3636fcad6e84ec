package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Main runs the bench subcommand given args (args[0] is "put", "get" or
// "produce"),
// printing to out. It returns when done or ctx ends. "-h" prints usage and
// returns nil. When ctx ends during the measured run, the figures gathered so
// far are printed and ctx's error is returned, wrapped.
func Main(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		mainUsage(out)
		return errors.New("bench: missing subcommand: put, get, produce or fanout")
	}
	switch args[0] {
	case "put":
		return runPut(ctx, args[1:], out)
	case "get":
		return runGet(ctx, args[1:], out)
	case "produce":
		return runProduce(ctx, args[1:], out)
	case "fanout":
		return runFanout(ctx, args[1:], out)
	case "responder":
		return runResponder(ctx, args[1:], out)
	case "-h", "-help", "--help", "help":
		mainUsage(out)
		return nil
	default:
		mainUsage(out)
		return fmt.Errorf("bench: unknown subcommand %q: want put, get, produce or fanout", args[0])
	}
}

func mainUsage(out io.Writer) {
	_, _ = fmt.Fprint(out, `usage: shoal bench put|get|produce|fanout|responder [flags]

Load tool for any Kinesis Data Streams endpoint (shoal, kinesalite, AWS...).
  put      write records with PutRecords batches (or single PutRecord calls)
  get      read a stream back shard by shard with GetRecords
  produce  write records through shoal's producer (batching, KPL aggregation,
           rate limiting, retries) and measure it, CPU per record included
  fanout   put at a fixed rate while several enhanced fan-out consumers read
           every shard; put->receive latency and delivered/missing counts
  responder  serve a minimal Kinesis endpoint that stores nothing, the
           yardstick to measure a server against (scripts/bench-compare.sh)

Run "shoal bench <subcommand> -h" for the flags.
`)
}

// common holds the flags shared by put and get.
type common struct {
	endpoint string
	region   string
	stream   string
	shards   int
	create   bool
	clients  int
	duration time.Duration
	requests int64
	warmup   time.Duration
	retries  int
	json     bool
	profile  string                  // -profile: the AWS profile to sign with
	creds    aws.CredentialsProvider // set by loadCredentials
}

func (c *common) register(fs *flag.FlagSet, clientsDefault int, clientsDoc string, warmupDefault time.Duration) {
	fs.StringVar(&c.endpoint, "endpoint", "http://127.0.0.1:4567", "Kinesis endpoint URL; several, comma-separated, spread the clients over them (shoal servers sharing one NATS cluster)")
	fs.StringVar(&c.region, "region", "us-east-1", "region used for SigV4 signing")
	fs.StringVar(&c.stream, "stream", "bench", "stream name")
	fs.IntVar(&c.shards, "shards", 4, "shard count of the stream when the tool creates it")
	fs.BoolVar(&c.create, "create", true, "create the stream if it is missing and wait until it is ACTIVE")
	fs.IntVar(&c.clients, "clients", clientsDefault, clientsDoc)
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of the measured run (after the warmup)")
	fs.Int64Var(&c.requests, "requests", 0, "if > 0, make exactly this many measured calls in total instead of running for -duration")
	fs.DurationVar(&c.warmup, "warmup", warmupDefault, "time spent calling before measuring; those calls are reported apart and excluded from the figures")
	fs.IntVar(&c.retries, "retries", 2, "SDK retries per call after the first attempt (standard retryer; 0 disables)")
	fs.BoolVar(&c.json, "json", false, "also print the result as one JSON line")
	registerProfile(fs, &c.profile)
}

func (c *common) validate() error {
	switch {
	case c.shards < 1:
		return fmt.Errorf("bench: -shards must be >= 1, got %d", c.shards)
	case c.clients < 0:
		return fmt.Errorf("bench: -clients must be >= 0, got %d", c.clients)
	case c.duration <= 0 && c.requests <= 0:
		return errors.New("bench: need -duration > 0 or -requests > 0")
	case c.warmup < 0:
		return fmt.Errorf("bench: -warmup must be >= 0, got %v", c.warmup)
	case c.retries < 0:
		return fmt.Errorf("bench: -retries must be >= 0, got %d", c.retries)
	}
	return nil
}

func (c *common) plan() plan {
	return plan{warmup: c.warmup, duration: c.duration, requests: c.requests}
}

// newFlagSet returns a FlagSet that reports to out and whose -h prints
// synopsis, text and the flags.
func newFlagSet(name, synopsis, text string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		_, _ = fmt.Fprintf(out, "usage: %s\n\n%s\nflags (-flag or --flag):\n", synopsis, text)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args; done is true (with a nil error) when -h was asked.
func parse(fs *flag.FlagSet, args []string) (done bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return true, fmt.Errorf("bench: %w", err)
	}
	if fs.NArg() > 0 {
		return true, fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	return false, nil
}

// newClients returns n Clients, each with its own connection pool, spread
// round robin over the endpoints.
func newClients(c *common, n int) []*Client {
	eps := endpoints(c.endpoint)
	cs := make([]*Client, n)
	for i := range cs {
		cs[i] = c.newClient(eps[i%len(eps)], c.retries)
	}
	return cs
}

// endpoints splits a comma-separated --endpoint.
func endpoints(list string) []string {
	var out []string
	for _, e := range strings.Split(list, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		out = []string{list}
	}
	return out
}

// ensureStream makes sure the stream exists and is ACTIVE, creating it with
// c.shards shards if it is missing and c.create is set. It returns the
// stream's open shard count.
func ensureStream(ctx context.Context, cl *Client, c *common, out io.Writer) (int, error) {
	if !c.create {
		return 0, nil
	}
	sum, err := describe(ctx, cl, c.stream)
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &notFound):
		_, err = cl.CreateStream(ctx, &kinesis.CreateStreamInput{
			StreamName: aws.String(c.stream),
			ShardCount: aws.Int32(int32(c.shards)),
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return 0, fmt.Errorf("bench: create stream %s: %w", c.stream, err)
		}
		_, _ = fmt.Fprintf(out, "created stream %s with %d shards\n", c.stream, c.shards)
	case err != nil:
		return 0, fmt.Errorf("bench: describe stream %s: %w", c.stream, err)
	case sum.StreamStatus == types.StreamStatusActive:
		return int(aws.ToInt32(sum.OpenShardCount)), nil
	}
	return waitActive(ctx, cl, c.stream)
}

func describe(ctx context.Context, cl *Client, stream string) (*types.StreamDescriptionSummary, error) {
	out, err := cl.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		return nil, err
	}
	if out.StreamDescriptionSummary == nil {
		return nil, errors.New("empty StreamDescriptionSummary")
	}
	return out.StreamDescriptionSummary, nil
}

// waitActive polls DescribeStreamSummary until the stream is ACTIVE, for at
// most two minutes.
func waitActive(ctx context.Context, cl *Client, stream string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		sum, err := describe(ctx, cl, stream)
		var notFound *types.ResourceNotFoundException
		switch {
		case err == nil && sum.StreamStatus == types.StreamStatusActive:
			return int(aws.ToInt32(sum.OpenShardCount)), nil
		case err != nil && !errors.As(err, &notFound):
			return 0, fmt.Errorf("bench: wait for stream %s to be active: %w", stream, err)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("bench: wait for stream %s to be active: %w", stream, ctx.Err())
		case <-tick.C:
		}
	}
}

// listShards returns the IDs of every shard of the stream (open or closed).
func listShards(ctx context.Context, cl *Client, stream string) ([]string, error) {
	var ids []string
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		out, err := cl.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("bench: list shards of %s: %w", stream, err)
		}
		for _, s := range out.Shards {
			ids = append(ids, aws.ToString(s.ShardId))
		}
		if out.NextToken == nil || *out.NextToken == "" {
			return ids, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// streamDesc is the stream part of the banner line.
func streamDesc(c *common, open int) string {
	if open > 0 {
		return fmt.Sprintf("stream %s (%d open shards)", c.stream, open)
	}
	return "stream " + c.stream
}
