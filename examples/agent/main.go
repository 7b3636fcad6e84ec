// Command agent is a small log shipper in the role of the Amazon Kinesis
// Agent: it follows files matched by globs, ships each new line as a record
// through the producer library, survives rotation by rename and by
// truncation (copytruncate), and remembers in a state file how far each
// file was acknowledged, so that a restart neither loses nor repeats lines.
//
//	go run ./examples/agent -files '/var/log/app/*.log*' -endpoint http://127.0.0.1:4567
//
// See README.md for the guarantees and the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shoalstream/shoal/examples/internal/exkit"
	"github.com/shoalstream/shoal/producer"
)

// config is what the flags set.
type config struct {
	Endpoint     string        // shoal server URL; "" runs an embedded one
	Profile      string        // AWS profile to sign with; "" means the SDK's default chain
	DataDir      string        // the embedded server's data
	Stream       string        // stream the lines go to
	Shards       int           // shards, if the stream has to be created
	Globs        []string      // files to follow
	StateFile    string        // where the offsets are kept
	KeyMode      string        // keyFile or keyRandom
	Poll         time.Duration // how often files are checked
	MaxLineBytes int           // longer lines are shipped in pieces
	StopTimeout  time.Duration // bound on the flush at stop
	RotatedGrace time.Duration // how long a file rotated away stays followed after its last growth
	Verbose      bool
}

// globList is a flag that may be repeated or hold comma-separated globs.
type globList []string

func (g *globList) String() string { return strings.Join(*g, ",") }

func (g *globList) Set(v string) error {
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*g = append(*g, p)
		}
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Endpoint, "endpoint", "", "shoal server URL; empty runs an embedded server (see -data-dir)")
	fs.StringVar(&c.Profile, "profile", "", exkit.ProfileUsage)
	fs.StringVar(&c.DataDir, "data-dir", "./shoal-agent-data", "data directory of the embedded server")
	fs.StringVar(&c.Stream, "stream", "logs", "stream the lines are put to (created if missing)")
	fs.IntVar(&c.Shards, "shards", 2, "shard count, if the stream has to be created")
	fs.Var((*globList)(&c.Globs), "files", "files to follow: a glob, comma-separated globs, or the flag repeated")
	fs.StringVar(&c.StateFile, "state", "agent-state.json", "file that keeps the offsets shipped")
	fs.StringVar(&c.KeyMode, "key", keyFile, "partition key: file (the file's name; keeps each file's order) or random")
	fs.DurationVar(&c.Poll, "poll", 250*time.Millisecond, "how often the files are checked")
	fs.IntVar(&c.MaxLineBytes, "max-line-bytes", 512<<10, "longest line shipped as one record; longer ones are split")
	fs.DurationVar(&c.StopTimeout, "stop-timeout", 30*time.Second, "how long a stop waits for the lines in flight")
	fs.DurationVar(&c.RotatedGrace, "rotated-grace", 10*time.Second, "how long a file no glob matches any more is still followed after it last grew")
	fs.BoolVar(&c.Verbose, "v", false, "log what the libraries do, on stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, c.validate()
}

func (c config) validate() error {
	var errs []error
	if len(c.Globs) == 0 {
		errs = append(errs, errors.New("-files is required"))
	}
	if c.StateFile == "" {
		errs = append(errs, errors.New("-state is required"))
	}
	if c.KeyMode != keyFile && c.KeyMode != keyRandom {
		errs = append(errs, fmt.Errorf("-key %q: want file or random", c.KeyMode))
	}
	if c.Poll <= 0 || c.StopTimeout <= 0 || c.Shards < 1 || c.RotatedGrace < 0 {
		errs = append(errs, errors.New("-poll, -stop-timeout and -shards must be positive, -rotated-grace not negative"))
	}
	// The record holds the line and the partition key (at most 256 bytes),
	// within the producer's default 1 MiB.
	if c.MaxLineBytes < 1 || c.MaxLineBytes > 1<<20-256 {
		errs = append(errs, fmt.Errorf("-max-line-bytes %d not in [1, %d]", c.MaxLineBytes, 1<<20-256))
	}
	return errors.Join(errs...)
}

func main() { exkit.Main("agent", parseFlags, run) }

// run is the whole program: main parses the flags and calls it, and so does
// the test. It follows the files until ctx ends, then stops cleanly.
func run(ctx context.Context, cfg config, out io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	logger := exkit.Logger(cfg.Verbose)
	defer logger.Sync() //nolint:errcheck // stderr sync errors are not interesting

	srv, err := exkit.Connect(cfg.Endpoint, cfg.DataDir, logger.Named("server"))
	if err != nil {
		return err
	}
	defer srv.Stop() //nolint:errcheck // nothing to do about it on the way out
	if srv.Embedded() {
		_, _ = fmt.Fprintf(out, "embedded shoal server at %s, data in %s\n", srv.Endpoint, cfg.DataDir)
	}
	client, _, err := srv.Stream(ctx, cfg.Profile, cfg.Stream, cfg.Shards)
	if err != nil {
		return err
	}
	prod, err := producer.New(client, producer.Config{
		StreamName:     cfg.Stream,
		MaxRecordBytes: cfg.MaxLineBytes + 256,
		Logger:         logger.Named("producer"),
	})
	if err != nil {
		return err
	}
	a, err := newAgent(cfg, prod, out, logger.Named("agent"))
	if err != nil {
		_ = prod.Close(context.Background())
		return err
	}
	runErr := a.run(ctx)
	cctx, cancel := context.WithTimeout(context.Background(), cfg.StopTimeout)
	defer cancel()
	if err := prod.Close(cctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("close producer: %w", err)
	}
	return runErr
}
