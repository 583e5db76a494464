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

// listenMetrics binds metrics_addr. The server binds it with its other
// ports, before it opens the Raft store or joins a cluster: a taken port
// then fails the start before the node has changed the cluster's
// membership (a node that joined and then died on a bind error would be a
// member at an address it never serves).
func listenMetrics(addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen metrics_addr %s: %w", addr, err)
	}
	return lis, nil
}

// serveMetrics serves the node's Prometheus metrics (vault.Node's
// collector, the Go runtime and the process) at /metrics on lis, over
// HTTPS with serverTLS: the scraper presents a certificate of the cluster
// CA, as on every other port of a node. It returns a function that stops
// the server and closes lis.
func serveMetrics(lis net.Listener, serverTLS *tls.Config, node *vault.Node, log *slog.Logger) (func(), error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(node.MetricsCollector()); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	tc := serverTLS.Clone()
	tc.NextProtos = []string{"h2", "http/1.1"}
	srv := &http.Server{Handler: mux, TLSConfig: tc, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ServeTLS(lis, "", "") }()
	log.Info("metrics listening", "addr", lis.Addr().String())
	return func() { _ = srv.Close() }, nil
}
