// Package console is shoal's web console: a single page, embedded in the
// binary, and the JSON API it talks to (API.md beside this file), served as
// one http.Handler that "shoal server" mounts at /console/ on its admin
// listener. Embedders mount it on a listener of their own:
//
//	hist := console.NewHistory(nil)
//	srv, _ := server.New(server.Config{DataDir: dir, Metrics: hist})
//	con, _ := console.New(console.Config{Server: srv, History: hist})
//	defer con.Close()
//	mux := http.NewServeMux()
//	mux.Handle("/console/", con.Handler())
//
// # Acting through the SDK
//
// The console carries every action to the Kinesis server through
// aws-sdk-go-v2's Kinesis client, over in-memory connections to the
// server's own handler (Server.ServeCleartext on a listener of the
// console's). When the server verifies requests (--auth-config), each
// signed-in browser session has a client of its own that signs with the
// principal's key, and its connections carry the browser's address, so the
// server authorizes every action as it would the principal's own SDK call,
// aws:SourceIp conditions included, and every error is the server's, in
// its words. Without authentication one anonymous client acts for every
// session. Three hooks of the server complete the picture, each asked only
// about a stream or consumer an authorized call has just reached:
// Server.ShardChanged wakes the live tail when a shard's log changes,
// Server.Subscriptions lists a consumer's open event streams, and
// Server.KeyAccount names a signed-in key's account.
//
// # Security
//
// Sessions are a random cookie (shoal_console: HttpOnly, SameSite=Strict,
// Path=/console/, Secure over TLS) with a CSRF token of their own that
// every POST must carry in X-Shoal-CSRF (compared in constant time), with an
// Origin, when the browser sends one, equal to the console's. Every answer
// carries a strict Content-Security-Policy, nosniff and no-referrer; the
// API's are JSON (record data in base64) and never cached. Secrets stay in
// memory, in the session's client, until sign-out, 12 idle hours or Close;
// they are never logged nor answered.
//
// # Data viewer and tail
//
// Pages of records come with an opaque cursor (HMAC-sealed) holding every
// shard's iterator and position; whole-stream reads follow children after
// their parents and merge shards by arrival time; KPL aggregates become
// their user records (package aggregation). GetRecords calls are paced
// under Kinesis's 5 per second per shard, across sessions, and retried
// when throttled. The tail is Server-Sent Events, pushed as the shards'
// logs wake it.
//
// # Shutdown
//
// Close ends the tails, stops the session janitor and waits for both,
// forgets the sessions, and closes the in-memory listener and the lease
// database's pool. It does not stop the server.
package console
