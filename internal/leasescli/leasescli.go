// Package leasescli is the "shoal leases" command: it prints the leases of a
// consumer application (package consumer) from the PostgreSQL lease table
// (package checkpoint), and optionally how far behind each shard's
// checkpoint is; its sub-commands change them while the workers run.
//
//	shoal leases --application orders-app [--database-url URL] [--schema S] [--table T]
//	             [--stream orders [--endpoint http://127.0.0.1:4567] [--region R] [--profile P]]
//	shoal leases reset --application A --stream S --to TRIM_HORIZON|LATEST|<RFC 3339 time>|<sequence number> [--shard ID]
//	shoal leases release --application A --shard ID
//	shoal leases delete --application A
//
// Without a sub-command it only reads. reset sets checkpoints (backwards
// too: every lease of the application in one transaction, or --shard's),
// release takes a lease from its owner, delete removes an application's
// leases; each goes through checkpoint.Admin, so a running worker drops the
// shard at once and can no longer checkpoint it. A reset to a time is an
// AT_TIMESTAMP checkpoint that carries the time: a worker starting the shard
// reads from the first record that arrived at or after it. A sequence number
// is a checkpoint: the record after it is the first processed; reset checks
// with Kinesis (on --stream) that the shard holds it. Every command refuses
// to run against a lease table that does not exist rather than create one.
//
// With --stream, its Kinesis calls are signed with the credentials of the
// AWS SDK's default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
// AWS_PROFILE or --profile, the shared config files, SSO...; see package
// awscreds): a shoal server started with --auth-config needs those of a
// principal allowed GetShardIterator and GetRecords on the stream. When the
// chain has none, placeholder credentials are used, which a server without
// --auth-config accepts; without --endpoint (AWS itself) that is an error
// instead.
package leasescli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/awscreds"
	"github.com/shoalstream/shoal/internal/bench"
	"github.com/shoalstream/shoal/internal/leaseview"
)

// DefaultDatabaseURL is --database-url's default when DATABASE_URL is unset.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// lagConcurrency bounds the GetRecords calls in flight when showing lag.
const lagConcurrency = 8

// Main runs the command with args (without the command's own name) and
// writes the table, or what a sub-command did, to out. ctx bounds the whole run. Flag errors come back
// as errors (flag.ErrHelp for -h); usage goes to out.
func Main(ctx context.Context, args []string, out io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "reset":
			return resetMain(ctx, args[1:], out)
		case "release":
			return releaseMain(ctx, args[1:], out)
		case "delete":
			return deleteMain(ctx, args[1:], out)
		}
	}
	fs := flag.NewFlagSet("shoal leases", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		dbURL    = fs.String("database-url", envOr("DATABASE_URL", DefaultDatabaseURL), "PostgreSQL URL of the lease table (default: $DATABASE_URL, else "+DefaultDatabaseURL+")")
		schema   = fs.String("schema", checkpoint.DefaultSchema, "schema of the lease table, as the consumer's checkpoint.PGConfig.Schema")
		table    = fs.String("table", checkpoint.DefaultTable, "lease table, as the consumer's checkpoint.PGConfig.Table")
		app      = fs.String("application", "", "consumer application name (required)")
		stream   = fs.String("stream", "", "stream name: show each shard's lag (MillisBehindLatest from its checkpoint)")
		endpoint = fs.String("endpoint", "", "Kinesis endpoint URL for --stream (e.g. http://127.0.0.1:4567); empty: AWS's endpoint for --region")
		region   = fs.String("region", envOr("AWS_REGION", "us-east-1"), "AWS region for --stream")
		profile  = fs.String("profile", "", "AWS shared config profile that signs --stream's calls; empty: the SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws files...), else placeholder credentials, which only a server without --auth-config accepts")
		timeout  = fs.Duration("timeout", 30*time.Second, "bound on the whole command")
	)
	fs.Usage = func() {
		_, _ = fmt.Fprintln(out, "usage: shoal leases --application NAME [flags]")
		_, _ = fmt.Fprintln(out, "       shoal leases reset|release|delete ... (-h for each)")
		_, _ = fmt.Fprintln(out, "Prints the leases of a consumer application: shard, owner, counter, checkpoint, expiry, parents, lag.")
		_, _ = fmt.Fprintln(out, "reset sets their checkpoints, release takes one from its owner, delete removes them, while workers run.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("leases: unexpected arguments %q", fs.Args())
	}
	if *app == "" {
		fs.Usage()
		return errors.New("leases: --application is required")
	}
	if *endpoint != "" && *stream == "" {
		return errors.New("leases: --endpoint needs --stream")
	}
	if *profile != "" && *stream == "" {
		return errors.New("leases: --profile needs --stream")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	var client *kinesis.Client // for --stream; credentials first, so that a bad --profile fails fast
	if *stream != "" {
		var err error
		if client, err = kinesisClient(ctx, *endpoint, *region, *profile); err != nil {
			return err
		}
	}
	leases, now, err := readLeases(ctx, *dbURL, *schema, *table, *app)
	if err != nil {
		return err
	}
	var lags map[string]string
	var notes []string
	if client != nil {
		lags, notes = lagOf(ctx, client, *stream, leases)
	}
	return render(out, *app, leases, now, lags, notes)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// readLeases reads the application's leases and the database's clock.
func readLeases(ctx context.Context, dbURL, schema, table, app string) ([]checkpoint.Lease, time.Time, error) {
	pool, err := leaseview.Connect(ctx, dbURL, 2)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("leases: --database-url: %w", err)
	}
	defer pool.Close()
	r := leaseview.NewReader(pool, schema, table)
	defer func() { _ = r.Close() }() // always nil
	leases, now, err := r.Leases(ctx, app)
	if errors.Is(err, leaseview.ErrNoTable) {
		return nil, time.Time{}, fmt.Errorf("leases: %w (check --schema and --table)", err)
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("leases: %w", err)
	}
	return leases, now, nil
}

// kinesisClient returns a client for endpoint (AWS's own when empty) that
// signs with the credentials of profile or the SDK's default chain
// (awscreds.Provider), or placeholder ones when it has none, which a
// server without --auth-config accepts; AWS would refuse them, so without
// an endpoint that is an error.
func kinesisClient(ctx context.Context, endpoint, region, profile string) (*kinesis.Client, error) {
	creds, err := awscreds.Provider(ctx, profile)
	if err != nil {
		return nil, fmt.Errorf("leases: %w", err)
	}
	if endpoint == "" && awscreds.IsPlaceholder(creds) {
		return nil, errors.New("leases: no AWS credentials found for --stream without --endpoint (AWS itself): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or --profile")
	}
	return kinesis.NewFromConfig(aws.Config{Region: region, Credentials: creds, HTTPClient: bench.NewHTTPClient(lagConcurrency)},
		func(o *kinesis.Options) {
			if endpoint != "" {
				o.BaseEndpoint = aws.String(endpoint)
			}
		}), nil
}

// lagOf returns, for each lease, how far its checkpoint is behind the
// newest record of its shard (leaseview.Lags); "n/a" where that cannot be
// told (no record checkpointed yet but LATEST or AT_TIMESTAMP, a finished
// shard, an error, which is also returned as a note).
func lagOf(ctx context.Context, client *kinesis.Client, stream string, leases []checkpoint.Lease) (map[string]string, []string) {
	lags := make(map[string]string, len(leases))
	var notes []string
	for shard, l := range leaseview.Lags(ctx, client, stream, leases, leaseview.LagOptions{Concurrency: lagConcurrency}) {
		lags[shard] = "n/a"
		if l.Known {
			lags[shard] = l.Behind.String()
		}
		if l.Err != nil {
			notes = append(notes, fmt.Sprintf("lag of %s: %v", shard, l.Err))
		}
	}
	sort.Strings(notes)
	return lags, notes
}

// render writes the table, a summary line and the notes.
func render(out io.Writer, app string, leases []checkpoint.Lease, now time.Time, lags map[string]string, notes []string) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	// The STREAM column only for a multi-stream application.
	multi := slices.ContainsFunc(leases, func(l checkpoint.Lease) bool { return l.Stream != "" })
	head := "SHARD\tOWNER\tCOUNTER\tCHECKPOINT\tEXPIRES\tPARENTS\tLAG"
	if multi {
		head = "STREAM\t" + head
	}
	if _, err := fmt.Fprintln(tw, head); err != nil {
		return err
	}
	owners := map[string]int{}
	unowned, expired := 0, 0
	for _, l := range leases {
		owner, expires := l.Owner, "-"
		switch {
		case l.Owner == "":
			owner = "-"
			unowned++
		case l.Expired:
			expires = "expired " + roundAge(now.Sub(l.ExpiresAt)) + " ago"
			expired++
		default:
			expires = "in " + roundAge(l.ExpiresAt.Sub(now))
		}
		if l.Owner != "" && !l.Expired {
			owners[l.Owner]++
		}
		cp := l.Checkpoint.String()
		if l.PendingCheckpoint != nil {
			cp += " (pending " + l.PendingCheckpoint.String() + ")"
		}
		parents := "-"
		if len(l.ParentShardIDs) > 0 {
			parents = strings.Join(l.ParentShardIDs, ",")
		}
		lag := "n/a"
		if v, ok := lags[l.Key()]; ok {
			lag = v
		}
		if multi {
			if _, err := fmt.Fprintf(tw, "%s\t", streamColumn(l.Stream)); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", l.ShardID, owner, l.Counter, cp, expires, parents, lag); err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	names := make([]string, 0, len(owners))
	for o := range owners {
		names = append(names, o)
	}
	sort.Strings(names)
	var per []string
	for _, o := range names {
		per = append(per, fmt.Sprintf("%s: %d", o, owners[o]))
	}
	summary := fmt.Sprintf("application %s: %s, %s", app, plural(len(leases), "lease"), plural(len(owners), "worker"))
	if len(per) > 0 {
		summary += " (" + strings.Join(per, ", ") + ")"
	}
	summary += fmt.Sprintf(", %d unowned, %d expired", unowned, expired)
	if _, err := fmt.Fprintln(out, summary); err != nil {
		return err
	}
	for _, n := range notes {
		if _, err := fmt.Fprintln(out, "note:", n); err != nil {
			return err
		}
	}
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// roundAge formats a duration to a tenth of a second.
func roundAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return d.Round(100 * time.Millisecond).String()
}

// streamColumn shows a lease's stream: its name and creation time, or "-"
// for the application's only stream.
func streamColumn(id string) string {
	if id == "" {
		return "-"
	}
	if _, created, err := checkpoint.ParseStreamIdentity(id); err == nil {
		return checkpoint.StreamName(id) + "@" + created.Format(time.RFC3339)
	}
	return id
}
