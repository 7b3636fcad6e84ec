package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/internal/strictjson"
	"github.com/shoalstream/shoal/server"
)

// The configuration of "shoal server" comes from four places, the first
// that sets a flag winning: the command line, the environment (SHOAL_<FLAG>:
// upper case, dashes as underscores), the --config file (JSON: one member
// per flag, by its name, "streams" and "faults"), and the flag's default.

// envPrefix starts the environment variable of every flag.
const envPrefix = "SHOAL_"

// envName is the environment variable that sets flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// startupConfig is what applyConfig found besides the flags' values.
type startupConfig struct {
	// streams are the streams to create: --create-streams's, then the
	// config file's.
	streams []server.StreamSpec
	// warnings are for the log, once there is one.
	warnings []string
	// faults are the config file's fault injection rules ("faults").
	faults server.FaultConfig
}

// fileStream is one member of the config file's "streams".
type fileStream struct {
	Name              string            `json:"name"`
	Shards            *int32            `json:"shards"`
	Mode              string            `json:"mode"`
	RetentionHours    int32             `json:"retentionHours"`
	RetentionBytes    int64             `json:"retentionBytes"`
	Tags              map[string]string `json:"tags"`
	Consumers         []string          `json:"consumers"`
	EncryptionKeyID   string            `json:"encryptionKeyId"`
	ShardLevelMetrics []string          `json:"shardLevelMetrics"`
}

// applyConfig sets each flag of fs that the command line (already parsed)
// did not set from the environment environ (os.Environ's form), else from
// the config file (the --config flag, else SHOAL_CONFIG), and returns the
// streams to create at start-up. An unknown member of the file is an
// error; an unknown SHOAL_ variable is a warning.
func applyConfig(fs *flag.FlagSet, environ []string) (*startupConfig, error) {
	cfg := &startupConfig{}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, envPrefix) {
			env[k] = v
		}
	}
	known := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	var unknown []string
	for k := range env {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		cfg.warnings = append(cfg.warnings, fmt.Sprintf("environment variable %s names no flag of shoal server; ignored", k))
	}

	// The environment, for what the command line left.
	fromEnv := map[string]bool{}
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || onCommandLine[f.Name] {
			return
		}
		if v, ok := env[envName(f.Name)]; ok {
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("environment variable %s (--%s): invalid value: %w", envName(f.Name), f.Name, serr)
			}
			fromEnv[f.Name] = true
		}
	})
	if err != nil {
		return nil, err
	}

	// The file, for what both left.
	var fileStreams []fileStream
	if path := fs.Lookup("config").Value.String(); path != "" {
		values, streams, faults, err := readConfigFile(fs, path)
		if err != nil {
			return nil, err
		}
		fileStreams, cfg.faults = streams, faults
		for _, name := range slices.Sorted(maps.Keys(values)) {
			if onCommandLine[name] || fromEnv[name] {
				continue
			}
			if err := fs.Set(name, values[name]); err != nil {
				return nil, fmt.Errorf("--config %s: %s: invalid value: %w", path, name, err)
			}
		}
	}

	cfg.streams, err = parseCreateStreams(fs.Lookup("create-streams").Value.String())
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, s := range cfg.streams {
		seen[s.Name] = true
	}
	for i, fsm := range fileStreams {
		spec, err := fsm.spec()
		if err != nil {
			return nil, fmt.Errorf("--config %s: streams[%d]: %w", fs.Lookup("config").Value, i, err)
		}
		if seen[spec.Name] {
			return nil, fmt.Errorf("--config %s: streams[%d]: stream %q is named twice (in streams or --create-streams)", fs.Lookup("config").Value, i, spec.Name)
		}
		seen[spec.Name] = true
		cfg.streams = append(cfg.streams, spec)
	}
	return cfg, nil
}

// readConfigFile reads the JSON config file at path: each member but
// "streams" and "faults" names a flag of fs and gives its value (a string,
// number or boolean), returned as the text Set takes. Errors name the
// member, never a value (of a flag).
func readConfigFile(fs *flag.FlagSet, path string) (map[string]string, []fileStream, server.FaultConfig, error) {
	var faults server.FaultConfig
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, faults, fmt.Errorf("--config: %w", err)
	}
	var members map[string]jsontext.Value
	if err := strictjson.Decode(data, &members); err != nil {
		return nil, nil, faults, fmt.Errorf("--config %s: %w", path, err)
	}
	values := map[string]string{}
	var streams []fileStream
	for _, name := range slices.Sorted(maps.Keys(members)) {
		raw := members[name]
		if name == "streams" {
			if err := strictjson.Decode(raw, &streams); err != nil {
				return nil, nil, faults, fmt.Errorf("--config %s: streams%s", path, pathSuffix(err))
			}
			continue
		}
		if name == "faults" {
			if faults, err = server.ParseFaults(raw); err != nil {
				return nil, nil, faults, fmt.Errorf("--config %s: faults%s", path, pathSuffix(err))
			}
			continue
		}
		if name == "config" || fs.Lookup(name) == nil {
			return nil, nil, faults, fmt.Errorf("--config %s: unknown key %q (keys are the flags of shoal server, without dashes in front, streams and faults)", path, name)
		}
		switch raw.Kind() {
		case '"':
			var s string
			if err := strictjson.Decode(raw, &s); err != nil {
				return nil, nil, faults, fmt.Errorf("--config %s: %s: %w", path, name, err)
			}
			values[name] = s
		case '0', 't', 'f':
			values[name] = string(raw)
		default:
			return nil, nil, faults, fmt.Errorf("--config %s: %s: want a string, number or boolean", path, name)
		}
	}
	return values, streams, faults, nil
}

// pathSuffix turns strictjson's error inside streams ("[0]: unknown field
// "x"", or a message without a path) into text to follow "streams".
func pathSuffix(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "[") || strings.HasPrefix(msg, ".") {
		return msg
	}
	return ": " + msg
}

// spec converts a config file stream.
func (f fileStream) spec() (server.StreamSpec, error) {
	spec := server.StreamSpec{
		Name: f.Name, RetentionHours: f.RetentionHours, RetentionBytes: f.RetentionBytes, Tags: f.Tags, Consumers: f.Consumers,
		EncryptionKeyID: f.EncryptionKeyID, ShardLevelMetrics: f.ShardLevelMetrics,
	}
	switch f.Mode {
	case "", "PROVISIONED":
		spec.Shards = 1
		if f.Shards != nil {
			if *f.Shards < 1 {
				return spec, fmt.Errorf("shards: %d is not a shard count (1 or more)", *f.Shards)
			}
			spec.Shards = *f.Shards
		}
	case "ON_DEMAND":
		if f.Shards != nil {
			return spec, errors.New("shards and mode ON_DEMAND exclude each other")
		}
		spec.OnDemand = true
	default:
		return spec, fmt.Errorf("mode: unknown mode %q (want PROVISIONED or ON_DEMAND)", f.Mode)
	}
	return spec, spec.Validate()
}

// parseCreateStreams parses --create-streams: comma-separated
// NAME[:SHARDS|:ON_DEMAND], one shard by default.
func parseCreateStreams(v string) ([]server.StreamSpec, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var specs []server.StreamSpec
	seen := map[string]bool{}
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		spec, err := parseStreamSpec(item)
		if err != nil {
			return nil, fmt.Errorf("--create-streams %q: %w", item, err)
		}
		if seen[spec.Name] {
			return nil, fmt.Errorf("--create-streams: stream %q is named twice", spec.Name)
		}
		seen[spec.Name] = true
		specs = append(specs, spec)
	}
	return specs, nil
}

func parseStreamSpec(item string) (server.StreamSpec, error) {
	if item == "" {
		return server.StreamSpec{}, errors.New("empty stream spec (a stray comma?)")
	}
	name, shape, hasShape := strings.Cut(item, ":")
	spec := server.StreamSpec{Name: name, Shards: 1}
	if hasShape {
		switch {
		case shape == "":
			return spec, errors.New("nothing after the colon (want a shard count or ON_DEMAND)")
		case shape == "ON_DEMAND":
			spec.Shards, spec.OnDemand = 0, true
		case strings.IndexAny(shape[:1], "0123456789+-") == 0:
			n, err := strconv.ParseInt(shape, 10, 32)
			if err != nil {
				return spec, fmt.Errorf("shard count %q is not a whole number", shape)
			}
			if n < 1 {
				return spec, fmt.Errorf("shard count %d: a stream has at least 1 shard", n)
			}
			spec.Shards = int32(n)
		default:
			return spec, fmt.Errorf("unknown mode %q (want a shard count or ON_DEMAND)", shape)
		}
	}
	return spec, spec.Validate()
}

// ensureStreams makes the streams named at start-up exist, ACTIVE, before
// the server listens.
func ensureStreams(ctx context.Context, srv *server.Server, specs []server.StreamSpec, logger *zap.Logger) error {
	for _, spec := range specs {
		created, err := srv.EnsureStream(ctx, spec)
		if err != nil {
			return fmt.Errorf("create stream %s at start-up: %w", spec.Name, err)
		}
		if created {
			logger.Info("stream named at start-up created", zap.String("stream", spec.Name))
		}
	}
	return nil
}
