package main

import (
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.uber.org/zap"
)

// reloader is one thing SIGHUP reloads: what names it in the log; reload
// (a Server method such as ReloadAuth or ReloadTLS) keeps what is in force
// and returns why when the new version does not load.
type reloader struct {
	what   string
	reload func() error
}

// reloadOnHUP runs every reloader, in order, on every SIGHUP until the
// returned stop is called: the server's --auth-config, its TLS certificate
// (--tls-cert/--tls-key, or the --tls-self-signed files). One that fails
// keeps the old configuration and logs why; the others still run.
func reloadOnHUP(logger *zap.Logger, reloaders ...reloader) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-hup:
				for _, r := range reloaders {
					if err := r.reload(); err != nil {
						logger.Error(r.what+" not reloaded", zap.Error(err))
					}
				}
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}

// loopback reports whether addr is a loopback address: only this machine
// reaches it.
func loopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
