package devcluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// dial opens a client connection to addr with tlsConf (no I/O until used).
func dial(addr string, tlsConf *tls.Config) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)))
}

// probe reports whether the node at addr serves: gRPC health SERVING and a
// leader known to it. The error says what is missing.
func probe(ctx context.Context, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	switch {
	case err == nil && h.GetStatus() != healthpb.HealthCheckResponse_SERVING:
		return fmt.Errorf("health %s", h.GetStatus())
	case err != nil && status.Code(err) != codes.NotFound && status.Code(err) != codes.Unimplemented:
		return fmt.Errorf("health: %w", err)
	}
	st, err := pb.NewClusterServiceClient(cc).Status(ctx, &pb.StatusRequest{})
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if st.GetLeaderId() == "" {
		return fmt.Errorf("no leader known")
	}
	return nil
}

// waitReady waits until node id serves with a leader, its process exits, or
// ctx ends.
func (c *Cluster) waitReady(ctx context.Context, id string, addr string, p *proc, logPath string) error {
	cc, err := dial(addr, c.adminTLS)
	if err != nil {
		return err
	}
	defer cc.Close()
	// A probe in flight ends as soon as the process exits.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var last error
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.exited() {
			return fmt.Errorf("%w: %s (%s); last lines of %s:\n%s", ErrNodeExited, id, exitStatus(p.err), logPath, logTail(logPath, 15))
		}
		if last = probe(ctx, cc); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			if p.exited() {
				continue // reported at the top of the loop
			}
			return fmt.Errorf("%w: %s: %w (last check: %v); see %s", ErrNotReady, id, ctx.Err(), last, logPath)
		case <-p.done:
		case <-tick.C:
		}
	}
}

// takenAddrs returns the addresses the node's last run (the log after the
// last "# devcluster: starting" line) could not bind because they were in
// use.
func takenAddrs(logPath string) map[string]bool {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return nil
	}
	run := string(b)
	if i := strings.LastIndex(run, startMarker); i >= 0 {
		run = run[i:]
	}
	taken := map[string]bool{}
	for _, m := range bindInUse.FindAllStringSubmatch(run, -1) {
		taken[m[1]] = true
	}
	return taken
}

// bindInUse matches Go's error for a taken port: "listen tcp ADDR: bind:
// address already in use".
var bindInUse = regexp.MustCompile(`listen tcp ([0-9.:\[\]a-fA-F]+): bind: address already in use`)
