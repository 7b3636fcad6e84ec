package main

import (
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.uber.org/zap"

	"github.com/shoalstream/shoal/server"
)

// reloadOnHUP re-reads the server's --auth-config on every SIGHUP until the
// returned stop is called. A file that does not parse keeps the old
// configuration; the log says why.
func reloadOnHUP(srv *server.Server, logger *zap.Logger) (stop func()) {
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
				if err := srv.ReloadAuth(); err != nil {
					logger.Error("auth configuration not reloaded", zap.Error(err))
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
