package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shoalstream/shoal/server"
)

func TestParseCreateStreams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []server.StreamSpec
	}{
		{"", nil},
		{"  ", nil},
		{"orders", []server.StreamSpec{{Name: "orders", Shards: 1}}},
		{"orders:4,events:ON_DEMAND,audit:1", []server.StreamSpec{{Name: "orders", Shards: 4}, {Name: "events", OnDemand: true}, {Name: "audit", Shards: 1}}},
		{" a.b-c_D:2 , e ", []server.StreamSpec{{Name: "a.b-c_D", Shards: 2}, {Name: "e", Shards: 1}}},
		{"big:100000", []server.StreamSpec{{Name: "big", Shards: 100000}}},
	} {
		got, err := parseCreateStreams(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseCreateStreams(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"orders:0", `--create-streams "orders:0": shard count 0: a stream has at least 1 shard`},
		{"orders:-2", `--create-streams "orders:-2": shard count -2`},
		{":3", `--create-streams ":3": stream name is empty`},
		{"orders:abc", `--create-streams "orders:abc": unknown mode "abc" (want a shard count or ON_DEMAND)`},
		{"orders:PROVISIONED", `unknown mode "PROVISIONED"`},
		{"orders:on_demand", `unknown mode "on_demand"`},
		{"orders:4x", `--create-streams "orders:4x": shard count "4x" is not a whole number`},
		{"orders:4:5", `shard count "4:5" is not a whole number`},
		{"orders:99999999999", `shard count "99999999999" is not a whole number`},
		{"orders:100001", `--create-streams "orders:100001": stream orders: shard count 100001 is out of range`},
		{"orders:", `--create-streams "orders:": nothing after the colon`},
		{"bad/name:2", `--create-streams "bad/name:2": stream name "bad/name" is not valid`},
		{"sp ace", `stream name "sp ace" is not valid`},
		{strings.Repeat("n", 129), "is not valid"},
		{"a,,b", `--create-streams "": empty stream spec`},
		{"orders:1,", `empty stream spec`},
		{"orders:4,events,orders:2", `--create-streams: stream "orders" is named twice`},
	} {
		got, err := parseCreateStreams(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseCreateStreams(%q) = %+v, %v; want an error containing %q", tc.in, got, err, tc.want)
		}
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"data-dir": "SHOAL_DATA_DIR", "create-streams": "SHOAL_CREATE_STREAMS", "tls-addr": "SHOAL_TLS_ADDR",
		"addr": "SHOAL_ADDR", "nats-tls-ca": "SHOAL_NATS_TLS_CA", "config": "SHOAL_CONFIG",
	} {
		if got := envName(in); got != want {
			t.Errorf("envName(%q) = %q, want %q", in, got, want)
		}
	}
}

// testFlags is a flag set like shoal server's, with a flag of each kind.
type testFlags struct {
	fs                                  *flag.FlagSet
	dataDir, storage, logLevel, streams *string
	interval                            *time.Duration
	encrypt                             *bool
	segment                             *int64
}

func newTestFlags() *testFlags {
	fs := flag.NewFlagSet("shoal server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := &testFlags{fs: fs,
		dataDir: fs.String("data-dir", "./shoal-data", ""), storage: fs.String("storage", "file", ""),
		logLevel: fs.String("log-level", "info", ""), streams: fs.String("create-streams", "", ""),
		interval: fs.Duration("fsync-interval", 200*time.Millisecond, ""), encrypt: fs.Bool("encrypt-all", false, ""),
		segment: fs.Int64("segment-bytes", 64<<20, ""),
	}
	fs.String("config", "", "")
	return f
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "shoal.json")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigPrecedence: a flag on the command line wins over its
// environment variable, which wins over the file, which wins over the
// default.
func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `{
		"data-dir": "/from/file", "storage": "memory", "log-level": "warn", "fsync-interval": "1s",
		"encrypt-all": true, "segment-bytes": 1048576
	}`)
	f := newTestFlags()
	if err := f.fs.Parse([]string{"--config", file, "--data-dir", "/from/flag"}); err != nil {
		t.Fatal(err)
	}
	env := []string{"SHOAL_DATA_DIR=/from/env", "SHOAL_STORAGE=nats", "PATH=/bin", "NOT_SHOAL_LOG_LEVEL=debug"}
	cfg, err := applyConfig(f.fs, env)
	if err != nil {
		t.Fatal(err)
	}
	if *f.dataDir != "/from/flag" || *f.storage != "nats" || *f.logLevel != "warn" || *f.interval != time.Second || !*f.encrypt || *f.segment != 1<<20 {
		t.Errorf("data-dir %q (want the flag's), storage %q (the environment's), log-level %q, fsync-interval %v, encrypt-all %v, segment-bytes %d (the file's)",
			*f.dataDir, *f.storage, *f.logLevel, *f.interval, *f.encrypt, *f.segment)
	}
	if len(cfg.warnings) != 0 || len(cfg.streams) != 0 {
		t.Errorf("warnings %q, streams %+v; want none", cfg.warnings, cfg.streams)
	}

	// Nothing set anywhere: the defaults.
	f = newTestFlags()
	if err := f.fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := applyConfig(f.fs, nil); err != nil {
		t.Fatal(err)
	}
	if *f.dataDir != "./shoal-data" || *f.storage != "file" || *f.interval != 200*time.Millisecond || *f.encrypt {
		t.Errorf("without configuration: %q %q %v %v; want the defaults", *f.dataDir, *f.storage, *f.interval, *f.encrypt)
	}

	// The file named by SHOAL_CONFIG, and SHOAL_CREATE_STREAMS.
	f = newTestFlags()
	if err := f.fs.Parse([]string{"--storage", "memory"}); err != nil {
		t.Fatal(err)
	}
	cfg, err = applyConfig(f.fs, []string{"SHOAL_CONFIG=" + file, "SHOAL_CREATE_STREAMS=orders:4,events:ON_DEMAND", "SHOAL_NATS_CACHE=/tmp/x", "SHOAL_DATA_DIRR=/typo"})
	if err != nil {
		t.Fatal(err)
	}
	if *f.dataDir != "/from/file" || *f.storage != "memory" {
		t.Errorf("with SHOAL_CONFIG: data-dir %q, storage %q; want the file's and the flag's", *f.dataDir, *f.storage)
	}
	want := []server.StreamSpec{{Name: "orders", Shards: 4}, {Name: "events", OnDemand: true}}
	if !reflect.DeepEqual(cfg.streams, want) {
		t.Errorf("streams %+v, want %+v", cfg.streams, want)
	}
	if len(cfg.warnings) != 2 || !strings.Contains(cfg.warnings[0], "SHOAL_DATA_DIRR") || !strings.Contains(cfg.warnings[1], "SHOAL_NATS_CACHE") {
		t.Errorf("warnings %q; want one for SHOAL_DATA_DIRR and one for SHOAL_NATS_CACHE", cfg.warnings)
	}
	for _, w := range cfg.warnings {
		if strings.Contains(w, "/typo") || strings.Contains(w, "/tmp/x") {
			t.Errorf("warning %q quotes a variable's value", w)
		}
	}
}

func TestConfigStreams(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `{"create-streams": "orders:2", "streams": [
		{"name": "audit", "shards": 3, "retentionHours": 168, "retentionBytes": 1073741824, "tags": {"team": "sec"}, "consumers": ["siem"],
		 "encryptionKeyId": "alias/aws/kinesis", "shardLevelMetrics": ["IncomingBytes", "OutgoingBytes"]},
		{"name": "events", "mode": "ON_DEMAND"},
		{"name": "one", "mode": "PROVISIONED"}
	]}`)
	f := newTestFlags()
	if err := f.fs.Parse([]string{"--config", file}); err != nil {
		t.Fatal(err)
	}
	cfg, err := applyConfig(f.fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []server.StreamSpec{
		{Name: "orders", Shards: 2},
		{Name: "audit", Shards: 3, RetentionHours: 168, RetentionBytes: 1 << 30, Tags: map[string]string{"team": "sec"}, Consumers: []string{"siem"},
			EncryptionKeyID: "alias/aws/kinesis", ShardLevelMetrics: []string{"IncomingBytes", "OutgoingBytes"}},
		{Name: "events", OnDemand: true},
		{Name: "one", Shards: 1},
	}
	if !reflect.DeepEqual(cfg.streams, want) {
		t.Errorf("streams\n%+v\nwant\n%+v", cfg.streams, want)
	}
}

// TestConfigErrors: unknown keys, bad values and bad streams in the file,
// and bad values in the environment, name the key and never the value.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		env  []string
		want string
	}{
		{file: `{"data-dir": "/d", "dta-dir": "/secret"}`, want: `unknown key "dta-dir"`},
		{file: `{"--data-dir": "/d"}`, want: `unknown key "--data-dir"`},
		{file: `{"config": "other.json"}`, want: `unknown key "config"`},
		{file: `{"streams": [{"name": "s", "shard": 2}]}`, want: `streams[0]: unknown field "shard"`},
		{file: `{"streams": [{"name": "s", "mode": "FAST"}]}`, want: `streams[0]: mode: unknown mode "FAST"`},
		{file: `{"streams": [{"name": "s", "mode": "ON_DEMAND", "shards": 2}]}`, want: `streams[0]: shards and mode ON_DEMAND exclude each other`},
		{file: `{"streams": [{"name": "s", "shards": 0}]}`, want: `streams[0]: shards: 0`},
		{file: `{"streams": [{"name": "bad/name"}]}`, want: `streams[0]: stream name "bad/name" is not valid`},
		{file: `{"streams": [{"name": "s", "retentionHours": 1}]}`, want: `retention period 1 hours`},
		{file: `{"streams": [{"name": "s", "retentionBytes": -1}]}`, want: `streams[0]: stream s: retention bytes -1 is negative`},
		{file: `{"streams": [{"name": "s", "retentionBytes": "big"}]}`, want: `streams[0]`},
		{file: `{"streams": [{"name": "s"}, {"name": "s"}]}`, want: `streams[1]: stream "s" is named twice`},
		{file: `{"create-streams": "s", "streams": [{"name": "s"}]}`, want: `streams[0]: stream "s" is named twice`},
		{file: `{"create-streams": "s:0"}`, want: `--create-streams "s:0"`},
		{file: `{"data-dir": ["a"]}`, want: `data-dir: want a string, number or boolean`},
		{file: `{"fsync-interval": "soon"}`, want: `fsync-interval`},
		{file: `{"encrypt-all": "sometimes"}`, want: `encrypt-all`},
		{file: `{"data-dir": "a", "data-dir": "b"}`, want: `duplicate field "data-dir"`},
		{file: `{"data-dir": `, want: "unexpected end of JSON"},
		{file: `{}`, env: []string{"SHOAL_FSYNC_INTERVAL=soon"}, want: "environment variable SHOAL_FSYNC_INTERVAL (--fsync-interval)"},
		{file: `{}`, env: []string{"SHOAL_CREATE_STREAMS=x:abc"}, want: `--create-streams "x:abc": unknown mode "abc"`},
	} {
		f := newTestFlags()
		if err := f.fs.Parse([]string{"--config", writeFile(t, tc.file)}); err != nil {
			t.Fatal(err)
		}
		_, err := applyConfig(f.fs, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("file %s, environment %q: %v; want an error containing %q", tc.file, tc.env, err, tc.want)
		} else if strings.Contains(err.Error(), "/secret") {
			t.Errorf("error %q quotes a value", err)
		}
	}
	f := newTestFlags()
	if err := f.fs.Parse([]string{"--config", filepath.Join(t.TempDir(), "missing.json")}); err != nil {
		t.Fatal(err)
	}
	if _, err := applyConfig(f.fs, nil); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("a missing file: %v; want an error naming it", err)
	}
}

// TestServerRefusesBadStreams runs runServer itself: a bad
// --create-streams, or a bad config file, stops it before it opens
// anything.
func TestServerRefusesBadStreams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--create-streams", "orders:0"}, `--create-streams "orders:0"`},
		{[]string{"--create-streams", "a,a"}, `stream "a" is named twice`},
		{[]string{"--config", writeFile(t, `{"nope": 1}`)}, `unknown key "nope"`},
	} {
		dir := t.TempDir()
		args := append([]string{"--storage", "memory", "--addr", "127.0.0.1:0", "--admin-addr", "off", "--data-dir", dir}, tc.args...)
		err := runServer(context.Background(), args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("shoal server %s: %v; want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
