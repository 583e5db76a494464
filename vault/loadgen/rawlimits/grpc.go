package rawlimits

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/panvault/panvault/vault/pki"
)

// GRPCOptions configure GRPCRoundTrip. Zero fields take the defaults.
type GRPCOptions struct {
	// Duration is the time of each measurement (default 3s).
	Duration time.Duration
	// Concurrency lists the caller counts to measure (default 1 and 64).
	// All callers share one connection, as the load generator's workers
	// share one connection per node.
	Concurrency []int
}

// GRPCRoundTrip measures the cheapest possible gRPC call over panvault's
// TLS policy: grpc.health.v1 Check against a bare server on 127.0.0.1 with a
// mutual TLS 1.3 configuration from package pki (in-memory CA), no
// interceptors. It is the transport floor under every vault call.
func GRPCRoundTrip(ctx context.Context, opts GRPCOptions) (rates []Rate, err error) {
	if opts.Duration == 0 {
		opts.Duration = 3 * time.Second
	}
	if len(opts.Concurrency) == 0 {
		opts.Concurrency = []int{1, 64}
	}
	if opts.Duration < 0 {
		return nil, fmt.Errorf("%w: grpc duration %v", ErrInvalidOptions, opts.Duration)
	}
	for _, c := range opts.Concurrency {
		if c < 1 || c > 4096 {
			return nil, fmt.Errorf("%w: grpc concurrency %d outside 1..4096", ErrInvalidOptions, c)
		}
	}
	serverTLS, clientTLS, err := probeTLS("rawlimits-grpc")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%w: listen: %w", ErrProbe, err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(serverTLS)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Stop()
		if serr := <-served; serr != nil && !errors.Is(serr, grpc.ErrServerStopped) {
			err = errors.Join(err, fmt.Errorf("%w: serve: %w", ErrProbe, serr))
		}
	}()

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
	if err != nil {
		return nil, fmt.Errorf("%w: dial: %w", ErrProbe, err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	call := func(ctx context.Context, _ int, _ int64) error {
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health status %s", resp.GetStatus())
		}
		return nil
	}
	// Connect (TLS handshake) before measuring.
	if err := call(ctx, 0, 0); err != nil {
		return nil, fmt.Errorf("%w: first call: %w", ErrProbe, err)
	}
	for _, c := range opts.Concurrency {
		r, err := timed(ctx, opts.Duration, c, call)
		if err != nil {
			return nil, fmt.Errorf("grpc concurrency %d: %w", c, err)
		}
		rates = append(rates, r)
	}
	return rates, nil
}

// probeTLS returns a server and a client configuration of panvault's mutual
// TLS policy, from a fresh in-memory CA. The server certificate is a node
// certificate (server and client authentication), so the same pair also
// serves node-to-node links such as Raft.
func probeTLS(name string) (server, client *tls.Config, err error) {
	ca, err := pki.NewCA()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: ca: %w", ErrProbe, err)
	}
	node, err := ca.IssueNode(name)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: node certificate: %w", ErrProbe, err)
	}
	return pki.ServerConfig(node.TLSCertificate(), ca.Pool()), pki.ClientConfig(node.TLSCertificate(), ca.Pool()), nil
}
