// Package audit writes an audit log of Kinesis API calls as CloudTrail
// records, one JSON object per line, so that parsers of CloudTrail (SIEMs,
// EventBridge-style rules) read it as they read AWS's.
//
// A server builds one Record per call, usually starting from NewRecord(op),
// fills in who (UserIdentity, or AnonymousIdentity when authentication is
// off), from where, the outcome (ErrorCode = the exact __type of a failure),
// RequestID (the x-amzn-RequestId it returned) and RequestParameters(input),
// and hands it to Writer.Write:
//
//	w, err := audit.Open("/var/log/shoal/audit.log", audit.Options{Logger: log})
//	...
//	rec := audit.NewRecord("CreateStream")
//	rec.RequestParameters = audit.RequestParameters(in)
//	w.Write(rec)
//	...
//	err = w.Close()
//
// IsDataEvent tells data events (PutRecord(s), GetRecords,
// GetShardIterator, SubscribeToShard; high volume, which CloudTrail logs
// only on request) from management events, for the caller's choice of what
// to log.
//
// # Guarantees
//
//   - Write never blocks the request and never fails it: a record that finds
//     the queue full, or the Writer closed, is dropped and counted.
//   - Every line is one complete JSON record. A failed write is taken back
//     out of the file (or, if that fails, the next write starts a new line);
//     a file that ends in a torn line when opened gets a newline first.
//   - Record payloads never reach the log: RequestParameters leaves out every
//     []byte member and every member named Data, PartitionKey or
//     ExplicitHashKey, and replaces a slice of records by its length.
//   - Failures are counted (Stats.Failed, per record) and logged at most once
//     per minute, without record content. The writer keeps going: after an
//     error it reopens the file on the next batch, and a rotation that
//     failed is retried on the next record, so the log resumes once the
//     disk has room again or the directory is back.
//   - Files are rotated by size (path → path.1 → … → path.MaxFiles, the
//     oldest dropped), between records: no record spans two files, and a
//     file exceeds MaxBytes only when a single record is larger than that.
//     If the path is moved or deleted by someone else (logrotate), the
//     writer notices before its next write and creates the file anew.
//
// # Concurrency and ownership
//
// Each Writer has one goroutine, started by Open or New and ended by Close.
// It alone owns the target (file, rotation state, torn-line state), the
// encoder, the batch buffer and the log rate limiter; nothing else touches
// them, so they need no lock. Others reach it only through the queue, a
// buffered channel of *Record.
//
// One lock, Writer.mu (a sync.RWMutex), orders Write against Close: Write
// holds it shared while it checks the closed flag and tries a non-blocking
// send; Close holds it exclusively while it sets the flag and closes the
// queue. So no Write sends on a closed channel, and every record that
// entered the queue is written (or counted failed) before Close returns.
// Write holds no lock while anything waits, except that it may wait out
// Close's few instructions under mu. The counters are atomics.
//
// A Record passed to Write belongs to the writer goroutine from then on: it
// fills in missing members (EventVersion, EventSource, EventType, EventID,
// EventCategory) and encodes it later. RequestParameters returns fresh maps
// that share no memory with the request, so the request may be reused.
//
// # Shutdown
//
// Close stops intake, drains the queue, syncs and closes the file, and waits
// for the goroutine; it may be called more than once.
package audit
