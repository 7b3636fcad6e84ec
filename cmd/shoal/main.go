// Command shoal runs the shoal Kinesis-compatible server and its tools.
//
//	shoal server [flags]      serve the Kinesis API on --addr, keeping data in --data-dir
//	shoal bench put|get|produce|fanout ...   drive any Kinesis endpoint and report throughput and latency
//	shoal leases ...          print a consumer application's lease table; reset, release or delete leases
//	shoal tail --stream S     follow a stream across reshards and print its records
//
// Run "shoal server -h" or "shoal bench put -h" for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoalstream/shoal/internal/leasescli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "shoal:", err)
		os.Exit(1)
	}
}

const usage = `usage: shoal <command> [flags]

commands:
  server         run the Kinesis-compatible server
  bench put      load-test PutRecords/PutRecord against a Kinesis endpoint
  bench get      load-test GetRecords against a Kinesis endpoint
  bench produce  load-test the producer library (aggregation, batching) against a Kinesis endpoint
  bench fanout   load-test enhanced fan-out delivery (put->receive latency) against a Kinesis endpoint
  leases         show a consumer application's leases, owners, checkpoints and lag;
                 leases reset|release|delete change them while its workers run
  tail           follow a stream across reshards and print every record once (text, json or hex)
  version        print the version
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		_, _ = fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "server":
		return runServer(ctx, args[1:], stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout)
	case "leases":
		return leasescli.Main(ctx, args[1:], stdout)
	case "tail":
		return runTail(ctx, args[1:], stdout, stderr)
	case "version":
		_, err := fmt.Fprintln(stdout, "shoal", version)
		return err
	case "-h", "--help", "help":
		_, _ = fmt.Fprint(stdout, usage)
		return nil
	}
	_, _ = fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
