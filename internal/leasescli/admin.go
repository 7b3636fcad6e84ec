package leasescli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/jackc/pgx/v5"

	"github.com/shoalstream/shoal/checkpoint"
	"github.com/shoalstream/shoal/internal/leaseview"
)

// The sub-commands that change the lease table, while workers run: each
// change goes through checkpoint.Admin, which moves the lease counter (the
// former owner's next checkpoint fails and cannot undo it) and announces it
// (the workers act at once).

// commonFlags are the flags every sub-command has.
type commonFlags struct {
	dbURL, schema, table, app *string
	timeout                   *time.Duration
}

func addCommon(fs *flag.FlagSet) commonFlags {
	return commonFlags{
		dbURL:   fs.String("database-url", envOr("DATABASE_URL", DefaultDatabaseURL), "PostgreSQL URL of the lease table (default: $DATABASE_URL, else "+DefaultDatabaseURL+")"),
		schema:  fs.String("schema", checkpoint.DefaultSchema, "schema of the lease table, as the consumer's checkpoint.PGConfig.Schema"),
		table:   fs.String("table", checkpoint.DefaultTable, "lease table, as the consumer's checkpoint.PGConfig.Table"),
		app:     fs.String("application", "", "consumer application name (required)"),
		timeout: fs.Duration("timeout", 30*time.Second, "bound on the whole command"),
	}
}

// parseSub parses a sub-command's flags; usage goes to out.
func parseSub(fs *flag.FlagSet, out io.Writer, args []string, usage, what string) error {
	fs.SetOutput(out)
	fs.Usage = func() {
		_, _ = fmt.Fprintln(out, "usage: shoal leases "+usage)
		_, _ = fmt.Fprintln(out, what)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("leases %s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}

// openAdmin opens the lease table for changes; it refuses to create a
// missing one. close releases the store and its pool.
func openAdmin(ctx context.Context, c commonFlags) (store *checkpoint.PGStore, closeFn func(), err error) {
	pool, err := leaseview.Connect(ctx, *c.dbURL, 2)
	if err != nil {
		return nil, nil, fmt.Errorf("--database-url: %w", err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pgx.Identifier{*c.schema, *c.table}.Sanitize()).Scan(&exists); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("look for the lease table: %w", err)
	}
	if !exists {
		pool.Close()
		return nil, nil, fmt.Errorf("%w %s.%s in the database (check --schema and --table)", leaseview.ErrNoTable, *c.schema, *c.table)
	}
	store, err = checkpoint.NewPGStore(ctx, pool, checkpoint.PGConfig{Schema: *c.schema, Table: *c.table})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return store, func() { _ = store.Close(); pool.Close() }, nil
}

// seqPattern is a sequence number with an optional sub-sequence number.
var seqPattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,128})(/([0-9]+))?$`)

// parsePosition reads a --to value: TRIM_HORIZON, LATEST, a time in RFC
// 3339 (AT_TIMESTAMP at that time), or a sequence number, optionally
// followed by "/" and a sub-sequence number (the checkpoint: processing
// resumes with the record after it).
func parsePosition(s string) (checkpoint.Checkpoint, error) {
	switch strings.ToUpper(s) {
	case checkpoint.TrimHorizon, checkpoint.Latest:
		return checkpoint.Checkpoint{SequenceNumber: strings.ToUpper(s)}, nil
	}
	if m := seqPattern.FindStringSubmatch(s); m != nil {
		cp := checkpoint.Checkpoint{SequenceNumber: m[1]}
		if m[3] != "" {
			sub, err := strconv.ParseInt(m[3], 10, 64)
			if err != nil {
				return checkpoint.Checkpoint{}, fmt.Errorf("sub-sequence number %q: %w", m[3], err)
			}
			cp.SubSequenceNumber = sub
		}
		return cp, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return checkpoint.Checkpoint{}, fmt.Errorf("%q is neither TRIM_HORIZON, LATEST, an RFC 3339 time nor a sequence number", s)
	}
	return checkpoint.AtTime(t), nil
}

// resetMain is "shoal leases reset".
func resetMain(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("reset", flag.ContinueOnError)
	c := addCommon(fs)
	var (
		stream   = fs.String("stream", "", "the application's stream (required): its shards are listed to check --shard and a sequence number")
		to       = fs.String("to", "", "where processing resumes (required): TRIM_HORIZON, LATEST, an RFC 3339 time (the first record that arrived at or after it), or a sequence number[/sub-sequence number] (the checkpoint: the record after it; needs --shard)")
		shard    = fs.String("shard", "", "reset this shard's lease only; empty: every lease of the application, in one transaction")
		endpoint = fs.String("endpoint", "", "Kinesis endpoint URL (e.g. http://127.0.0.1:4567); empty: AWS's endpoint for --region")
		region   = fs.String("region", envOr("AWS_REGION", "us-east-1"), "AWS region")
		profile  = fs.String("profile", "", "AWS shared config profile that signs the Kinesis calls; empty: the SDK's default chain, else placeholder credentials")
	)
	err := parseSub(fs, out, args, "reset --application A --stream S --to TRIM_HORIZON|LATEST|<RFC 3339 time>|<sequence number> [--shard ID] [flags]",
		"Resets the checkpoints of a consumer application's leases while its workers run: they drop the shards at once and resume from the new position.")
	switch {
	case err != nil:
		return err
	case *c.app == "" || *stream == "" || *to == "":
		fs.Usage()
		return errors.New("leases reset: --application, --stream and --to are required")
	}
	cp, err := parsePosition(*to)
	if err != nil {
		return fmt.Errorf("leases reset: --to: %w", err)
	}
	if !cp.IsSentinel() && *shard == "" {
		return errors.New("leases reset: a sequence number belongs to one shard: give --shard")
	}
	ctx, cancel := context.WithTimeout(ctx, *c.timeout)
	defer cancel()
	client, err := kinesisClient(ctx, *endpoint, *region, *profile)
	if err != nil {
		return err
	}
	listed, err := streamShards(ctx, client, *stream)
	if err != nil {
		return fmt.Errorf("leases reset: %w", err)
	}
	if *shard != "" && !listed[*shard] {
		return fmt.Errorf("leases reset: stream %s has no shard %s", *stream, *shard)
	}
	if !cp.IsSentinel() {
		if err := holds(ctx, client, *stream, *shard, cp); err != nil {
			return fmt.Errorf("leases reset: %w", err)
		}
	}
	store, closeStore, err := openAdmin(ctx, c)
	if err != nil {
		return fmt.Errorf("leases reset: %w", err)
	}
	defer closeStore()
	before, err := store.ListLeases(ctx, *c.app)
	if err != nil {
		return fmt.Errorf("leases reset: %w", err)
	}
	if !slices.ContainsFunc(before, func(l checkpoint.Lease) bool { return listed[l.ShardID] && leaseview.OfStream(l, *stream) }) {
		return fmt.Errorf("leases reset: application %s has no lease of a shard of stream %s", *c.app, *stream)
	}
	only, err := resetKeys(before, *stream, *shard)
	if err != nil {
		return fmt.Errorf("leases reset: %w", err)
	}
	reset, err := store.ResetLeases(ctx, *c.app, only, cp)
	if err != nil {
		return fmt.Errorf("leases reset: %w", err)
	}
	was := make(map[string]checkpoint.Lease, len(before))
	for _, l := range before {
		was[l.Key()] = l
	}
	if _, err := fmt.Fprintf(out, "application %s: %s reset to %s\n", *c.app, plural(len(reset), "lease"), cp); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "SHARD\tOWNER\tCHECKPOINT WAS\tNOW")
	for _, l := range reset {
		owner := was[l.Key()].Owner
		if owner == "" {
			owner = "-"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.ShardID, owner, was[l.Key()].Checkpoint, l.Checkpoint)
	}
	return tw.Flush()
}

// streamShards lists the shard IDs of stream.
func streamShards(ctx context.Context, client *kinesis.Client, stream string) (map[string]bool, error) {
	out := map[string]bool{}
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		res, err := client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list the shards of %s: %w", stream, err)
		}
		for _, s := range res.Shards {
			out[aws.ToString(s.ShardId)] = true
		}
		if aws.ToString(res.NextToken) == "" {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
}

// holds checks that shard holds the record cp names, so that the workers
// can read from it (a checkpoint the shard does not hold stalls it).
func holds(ctx context.Context, client *kinesis.Client, stream, shard string, cp checkpoint.Checkpoint) error {
	_, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(shard),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(cp.SequenceNumber),
	})
	var invalid *types.InvalidArgumentException
	if errors.As(err, &invalid) {
		return fmt.Errorf("shard %s of %s does not hold sequence number %s: %w", shard, stream, cp.SequenceNumber, err)
	}
	return err
}

// deleteMain is "shoal leases delete".
func deleteMain(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	c := addCommon(fs)
	err := parseSub(fs, out, args, "delete --application A [flags]",
		"Deletes every lease of a consumer application: it starts again from its initial position. Stop its workers first: running ones recreate the leases at their next shard sync.")
	switch {
	case err != nil:
		return err
	case *c.app == "":
		fs.Usage()
		return errors.New("leases delete: --application is required")
	}
	ctx, cancel := context.WithTimeout(ctx, *c.timeout)
	defer cancel()
	store, closeStore, err := openAdmin(ctx, c)
	if err != nil {
		return fmt.Errorf("leases delete: %w", err)
	}
	defer closeStore()
	n, err := store.DeleteApplication(ctx, *c.app)
	if err != nil {
		return fmt.Errorf("leases delete: %w", err)
	}
	_, err = fmt.Fprintf(out, "application %s: %s deleted\n", *c.app, plural(n, "lease"))
	return err
}

// releaseMain is "shoal leases release".
func releaseMain(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	c := addCommon(fs)
	shard := fs.String("shard", "", "the shard whose lease to release (required)")
	stream := fs.String("stream", "", "the stream of the shard (name, ARN or identity), for a multi-stream application; empty: the application's only stream")
	err := parseSub(fs, out, args, "release --application A --shard ID [--stream S] [flags]",
		"Releases a lease whoever holds it: its owner drops the shard at once, without checkpointing, and the application's workers take it again from its checkpoint.")
	switch {
	case err != nil:
		return err
	case *c.app == "" || *shard == "":
		fs.Usage()
		return errors.New("leases release: --application and --shard are required")
	}
	ctx, cancel := context.WithTimeout(ctx, *c.timeout)
	defer cancel()
	store, closeStore, err := openAdmin(ctx, c)
	if err != nil {
		return fmt.Errorf("leases release: %w", err)
	}
	defer closeStore()
	key := *shard
	if *stream != "" {
		all, err := store.ListLeases(ctx, *c.app)
		if err != nil {
			return fmt.Errorf("leases release: %w", err)
		}
		if key, err = streamLeaseKey(all, *stream, *shard); err != nil {
			return fmt.Errorf("leases release: %w", err)
		}
	}
	was, err := store.GetLease(ctx, *c.app, key)
	if err != nil {
		return fmt.Errorf("leases release: %w", err)
	}
	l, err := store.ForceRelease(ctx, *c.app, key)
	if err != nil {
		return fmt.Errorf("leases release: %w", err)
	}
	if was.Owner == "" || l.Counter == was.Counter {
		_, err = fmt.Fprintf(out, "application %s: lease %s was not held; checkpoint %s\n", *c.app, *shard, l.Checkpoint)
		return err
	}
	_, err = fmt.Fprintf(out, "application %s: lease %s released (was held by %s); checkpoint %s\n", *c.app, *shard, was.Owner, l.Checkpoint)
	return err
}

// resetKeys returns the keys of the leases a reset of stream (and of shard,
// if not empty) changes: nil (every lease) when the application reads one
// stream, else the keys of that stream's leases.
func resetKeys(leases []checkpoint.Lease, stream, shard string) ([]string, error) {
	multi := slices.ContainsFunc(leases, func(l checkpoint.Lease) bool { return l.Stream != "" })
	if !multi {
		if shard == "" {
			return nil, nil
		}
		return []string{shard}, nil
	}
	if shard != "" {
		key, err := streamLeaseKey(leases, stream, shard)
		if err != nil {
			return nil, err
		}
		return []string{key}, nil
	}
	var keys []string
	for _, l := range leases {
		if l.Stream != "" && leaseview.OfStream(l, stream) && newestIdentity(leases, l) {
			keys = append(keys, l.Key())
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no lease of stream %s", stream)
	}
	return keys, nil
}

// streamLeaseKey returns the key of the lease of shard in stream (a name,
// ARN or identity): of the stream's newest identity, if the stream was
// re-created, unless stream is an identity.
func streamLeaseKey(leases []checkpoint.Lease, stream, shard string) (string, error) {
	for _, l := range leases {
		if l.ShardID == shard && (l.Stream == stream || (leaseview.OfStream(l, stream) && newestIdentity(leases, l))) {
			return l.Key(), nil
		}
	}
	return "", fmt.Errorf("no lease of shard %s of stream %s", shard, stream)
}

// newestIdentity reports whether l's stream is the newest identity of its
// stream name among the leases (an older one is a stream deleted and
// re-created since).
func newestIdentity(leases []checkpoint.Lease, l checkpoint.Lease) bool {
	_, created, err := checkpoint.ParseStreamIdentity(l.Stream)
	if err != nil {
		return true
	}
	for _, o := range leases {
		if o.Stream == "" || checkpoint.StreamName(o.Stream) != checkpoint.StreamName(l.Stream) {
			continue
		}
		if _, c, err := checkpoint.ParseStreamIdentity(o.Stream); err == nil && c.After(created) {
			return false
		}
	}
	return true
}
