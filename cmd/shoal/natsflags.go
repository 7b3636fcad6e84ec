package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/engine/natsengine"
)

// natsFlags are the options of `shoal server --storage nats`.
type natsFlags struct {
	url, creds, ca, cert, key, prefix *string
	replicas                          *int
	timeout                           *time.Duration
}

func addNATSFlags(fs *flag.FlagSet) natsFlags {
	return natsFlags{
		url:      fs.String("nats-url", "nats://127.0.0.1:4222", "NATS cluster URLs, comma-separated (--storage nats); user:password@ in a URL authenticates"),
		creds:    fs.String("nats-creds", "", "NATS credentials file (JWT and NKey seed) for --storage nats"),
		ca:       fs.String("nats-tls-ca", "", "PEM CA file to verify the NATS servers (TLS)"),
		cert:     fs.String("nats-tls-cert", "", "PEM client certificate for NATS (mutual TLS)"),
		key:      fs.String("nats-tls-key", "", "PEM client key for --nats-tls-cert"),
		prefix:   fs.String("nats-prefix", "SHOAL", "prefix of the JetStream streams and KV bucket this shoal cluster uses ([A-Za-z0-9_])"),
		replicas: fs.Int("nats-replicas", 3, "replicas of every JetStream stream and of the catalog bucket"),
		timeout:  fs.Duration("nats-timeout", 5*time.Second, "timeout of one JetStream request or publish"),
	}
}

func (f natsFlags) config(logger *zap.Logger) natsengine.Config {
	opts := []nats.Option{nats.Name("shoal")}
	if *f.creds != "" {
		opts = append(opts, nats.UserCredentials(*f.creds))
	}
	if *f.ca != "" {
		opts = append(opts, nats.RootCAs(*f.ca))
	}
	if *f.cert != "" || *f.key != "" {
		opts = append(opts, nats.ClientCert(*f.cert, *f.key))
	}
	return natsengine.Config{
		URL: strings.TrimSpace(*f.url), Options: opts, Replicas: *f.replicas, Prefix: *f.prefix,
		RequestTimeout: *f.timeout, Logger: logger,
	}
}

// retryUntilReady runs open until it succeeds or ctx ends, backing off
// between attempts: a shoal node started before its NATS cluster is ready
// waits for it instead of exiting.
func retryUntilReady[T any](ctx context.Context, logger *zap.Logger, what string, open func(context.Context) (T, error)) (T, error) {
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		v, err := open(ctx)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return v, fmt.Errorf("%s: %w (gave up: %w)", what, err, ctx.Err())
		}
		logger.Warn("not ready, retrying", zap.String("step", what), zap.Int("attempt", attempt), zap.Duration("in", delay), zap.Error(err))
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// redactURL hides passwords in NATS URLs for the log.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				parts[i] = u[:scheme+3] + "REDACTED@" + u[at+1:]
			}
		}
	}
	return strings.Join(parts, ",")
}
