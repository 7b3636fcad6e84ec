package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/shoalstream/shoal/server"
	"github.com/shoalstream/shoal/server/console"
	"github.com/shoalstream/shoal/server/prommetrics"
)

// defaultAdminAddr is where the admin listener serves unless told
// otherwise: /metrics, /healthz, /readyz, /faults and the web console
// (/console/), apart from the Kinesis API so that scraping needs no
// signature.
const defaultAdminAddr = "127.0.0.1:9567"

// newMetrics returns the registry the admin listener serves and the server's
// metrics in it, with the Go runtime's and the process's.
func newMetrics() (*prometheus.Registry, *prommetrics.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, prommetrics.New(reg)
}

// serveAdmin serves the admin endpoints on addr until the returned stop is
// called, and the web console at /console/ when con is not nil (stop
// closes it first, which ends its live tails). An address in use is an
// error only when the address was asked for: the default one, taken by
// another shoal on the machine, is logged and skipped (bound is then nil).
func serveAdmin(addr string, explicit bool, reg *prometheus.Registry, srv *server.Server, con *console.Console, logger *zap.Logger) (stop func(), bound net.Addr, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if !explicit && errors.Is(err, syscall.EADDRINUSE) {
			logger.Warn("the admin listener's default address is in use; no /metrics, /healthz or /readyz (set --admin-addr)", zap.String("addr", addr))
			return func() {}, nil, nil
		}
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := srv.Ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("/faults", faultsHandler(srv))
	if con != nil {
		mux.Handle("/console/", con.Handler())
		mux.Handle("/console", con.Handler()) // redirects to /console/
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			if con != nil {
				_ = con.Close() // ends the tails, whose connections Shutdown would wait for
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(ctx)
			<-done
		})
	}, ln.Addr(), nil
}

// maxFaultsBody bounds the body of a PUT or POST to /faults.
const maxFaultsBody = 1 << 20

// faultsHandler serves /faults, the fault injection rules in force: GET
// lists them and their counters as JSON; PUT or POST replaces them with the
// JSON body ({"seed":42,"rules":[...]}, as the config file's "faults") and
// answers with the new list; DELETE removes every rule.
func faultsHandler(srv *server.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPut, http.MethodPost:
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFaultsBody))
			if err != nil {
				http.Error(w, "read the body: "+err.Error(), http.StatusBadRequest)
				return
			}
			fc, err := server.ParseFaults(body)
			if err == nil {
				err = srv.SetFaults(fc)
			}
			if err != nil {
				http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
				return
			}
		case http.MethodDelete:
			if err := srv.SetFaults(server.FaultConfig{}); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT, POST, DELETE")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		out, err := srv.MarshalFaults()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(out, '\n'))
	})
}
