package exkit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Main is the main function of an example called name: it parses the
// command line with parse, runs run with a context that ends on SIGINT or
// SIGTERM and with standard output, and exits with Exit's code.
func Main[C any](name string, parse func(args []string, stderr io.Writer) (C, error), run func(ctx context.Context, cfg C, out io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Exit(ctx, name, os.Args[1:], os.Stdout, os.Stderr, parse, run)
	stop()
	os.Exit(code)
}

// Exit is Main without the process: it returns 0 after -h or a run that
// succeeded, 2 when the flags are wrong and 1 when run fails, and prints
// either error on stderr after the example's name.
func Exit[C any](ctx context.Context, name string, args []string, stdout, stderr io.Writer, parse func([]string, io.Writer) (C, error), run func(context.Context, C, io.Writer) error) int {
	cfg, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		_, _ = fmt.Fprintln(stderr, name+":", err)
		return 2
	}
	if err := run(ctx, cfg, stdout); err != nil {
		_, _ = fmt.Fprintln(stderr, name+":", err)
		return 1
	}
	return 0
}
