// Package enginetest is the conformance suite of engine.Engine: every
// storage engine of shoal must pass it. It checks the behaviour the doc
// comments of package engine promise, for engine.Log (positions, reads and
// their limits, arrival times, SeekTime, Info, TrimBefore, Changed, Seal and
// Unseal, concurrent appends), engine.Engine (creating, opening, deleting,
// listing and closing logs) and engine.Catalog (compare-and-set of stream
// and account records, deep copies, races), and, for durable engines, what
// survives a reopen.
//
// # Using it
//
// An engine's package calls Run from a test with a Harness that makes
// engines:
//
//	func TestConformance(t *testing.T) {
//		enginetest.Run(t, enginetest.Harness{
//			New: func(t *testing.T, now func() time.Time) engine.Engine {
//				e := memengine.New(memengine.Config{Now: now})
//				t.Cleanup(func() { e.Close() })
//				return e
//			},
//		})
//	}
//
// New gets the clock the engine must take arrival times from: the suite
// moves it to make distinct (or backwards) arrival times, so no test
// sleeps. A durable engine also sets Reopen, which closes an engine and
// opens another on its data; Reopen must remember where New put the data
// and which clock it got, for example in a map keyed by the engine:
//
//	type opened struct {
//		dir string
//		now func() time.Time
//	}
//	var mu sync.Mutex
//	dirs := map[engine.Engine]opened{}
//	open := func(t *testing.T, o opened) engine.Engine {
//		e, err := fileengine.Open(o.dir, fileengine.Options{Now: o.now})
//		if err != nil {
//			t.Fatal(err)
//		}
//		t.Cleanup(func() { e.Close() })
//		mu.Lock()
//		dirs[e] = o
//		mu.Unlock()
//		return e
//	}
//	enginetest.Run(t, enginetest.Harness{
//		New: func(t *testing.T, now func() time.Time) engine.Engine {
//			return open(t, opened{t.TempDir(), now})
//		},
//		Reopen: func(t *testing.T, e engine.Engine) engine.Engine {
//			mu.Lock()
//			o := dirs[e]
//			mu.Unlock()
//			if err := e.Close(); err != nil {
//				t.Fatal(err)
//			}
//			return open(t, o)
//		},
//	})
//
// An engine whose seal cannot be undone (Unseal fails with
// engine.ErrIrreversible, as on NATS JetStream) sets Harness.IrreversibleSeal:
// the tests that unseal then check that Unseal fails so and leaves the log
// sealed, and skip their steps after it (Seal/WhileAppending runs one round).
//
// The cleanups close engines that tests may have closed already, so Close
// must tolerate a second call (returning ErrClosed is fine: the cleanups
// ignore it). Without Reopen the durability tests are skipped.
//
// # What the suite assumes beyond the doc comments
//
//   - Arrival times come from the clock New got: a batch's arrival is the
//     clock's time in milliseconds, or the previous arrival if the clock is
//     behind it.
//   - Append copies the records' data, and Read returns data the caller
//     owns.
//   - A Read whose limits hold every record from from on returns them all
//     at once (the tests use up to a few hundred small records).
//   - TrimBefore removes nothing a Read from a retained position would miss:
//     what remains is a suffix of the log.
//   - After Engine.Close the catalog fails with ErrClosed too, and every
//     method of a closed, deleted or engine-closed log handle but Close
//     and Changed fails with ErrClosed.
//   - Catalog versions of one record never repeat, and the catalog keeps
//     deep copies of what it is given and hands out.
//
// The suite accepts either answer where the doc comments allow two:
// OpenLog of a log never created (or deleted) may fail with ErrNotFound or
// return an empty log; a Read past the end may return next = from or End.
// Logs is checked only for logs that were written to.
//
// The tests append records of up to 256 KiB and batches of up to
// MaxBatchRecords records; the largest runs 8 goroutines appending 200
// batches each, and Seal/WhileAppending races 8 appenders against Seal for
// 120 rounds.
package enginetest
