package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/panvault/panvault/vault"
)

// serveMetrics serves the node's Prometheus metrics (vault.Node's
// collector, the Go runtime and the process) at /metrics on addr, over
// HTTPS with serverTLS: the scraper presents a certificate of the cluster
// CA, as on every other port of a node. It returns a function that stops
// the listener.
func serveMetrics(addr string, serverTLS *tls.Config, node *vault.Node, log *slog.Logger) (func(), error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(node.MetricsCollector()); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen metrics_addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	tc := serverTLS.Clone()
	tc.NextProtos = []string{"h2", "http/1.1"}
	srv := &http.Server{Handler: mux, TLSConfig: tc, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ServeTLS(lis, "", "") }()
	log.Info("metrics listening", "addr", lis.Addr().String())
	return func() { _ = srv.Close() }, nil
}
