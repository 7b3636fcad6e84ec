package kms_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/shoalstream/shoal/internal/kms"
)

// TestConcurrent wraps and unwraps from many goroutines while others
// rotate, disable and enable the default key and reload the keys file with
// more versions (run it with -race). The only error allowed is
// ErrDisabled, on the default key; at the end every data key unwraps. The
// goroutines do fixed amounts of work, so nothing depends on timing.
func TestConcurrent(t *testing.T) {
	const (
		workers   = 8
		perWorker = 150
		changes   = 20
	)
	e := newEnv(t, ordersKeys("", "o0"))
	k := e.open()

	type wrapped struct{ dek, blob []byte }
	var (
		mu      sync.Mutex
		got     []wrapped
		rotated int
	)
	fail := make(chan error, workers+3)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				keyID := kms.DefaultAlias
				if (w+i)%2 == 1 {
					keyID = "alias/orders"
				}
				dek, blob, err := k.GenerateDataKey(keyID)
				if err == nil {
					mu.Lock()
					got = append(got, wrapped{dek, blob})
					mu.Unlock()
					var back []byte
					back, err = k.Unwrap(blob)
					if err == nil && string(back) != string(dek) {
						err = errors.New("Unwrap returned another key")
					}
				}
				if err != nil && !(keyID == kms.DefaultAlias && errors.Is(err, kms.ErrDisabled)) {
					fail <- fmt.Errorf("%s: %w", keyID, err)
					return
				}
			}
		})
	}
	wg.Go(func() { // rotates the default key
		for range changes {
			err := k.Rotate(kms.DefaultAlias)
			if err == nil {
				mu.Lock()
				rotated++
				mu.Unlock()
			} else if !errors.Is(err, kms.ErrDisabled) {
				fail <- fmt.Errorf("Rotate: %w", err)
				return
			}
		}
	})
	wg.Go(func() { // disables and enables it
		for i := range 2 * changes {
			if err := k.SetEnabled(kms.DefaultAlias, i%2 == 1); err != nil {
				fail <- fmt.Errorf("SetEnabled: %w", err)
				return
			}
		}
	})
	wg.Go(func() { // adds versions to the file key
		vs := []string{"o0"}
		for i := range changes {
			vs = append(vs, fmt.Sprint("o", i+1))
			e.writeKeys(ordersKeys("", vs...))
			if err := k.Reload(); err != nil {
				fail <- fmt.Errorf("Reload: %w", err)
				return
			}
		}
	})
	wg.Wait()
	close(fail)
	for err := range fail {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	if got := mustResolve(t, k, kms.DefaultAlias); got.Versions != 1+rotated {
		t.Errorf("default key: %d versions after %d rotations", got.Versions, rotated)
	}
	if got := mustResolve(t, k, "alias/orders"); got.Versions != 1+changes {
		t.Errorf("orders key: %d versions after %d reloads", got.Versions, changes)
	}
	if len(got) < workers*perWorker/2 { // every orders wrap succeeds
		t.Fatalf("only %d wraps", len(got))
	}
	for _, w := range got {
		mustUnwrap(t, k, w.blob, w.dek)
	}
	k2 := e.open() // and all of it survives a restart
	for _, w := range got {
		mustUnwrap(t, k2, w.blob, w.dek)
	}
}
