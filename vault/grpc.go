package vault

import (
	"crypto/tls"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// Limits of the gRPC edge. A vault's requests are small: a batch of
// MaxBatchItems PANs with request ids is well under MaxRecvMsgSize.
const (
	// MaxRecvMsgSize caps one request message.
	MaxRecvMsgSize = 1 << 20
	// MaxSendMsgSize caps one response message.
	MaxSendMsgSize = 4 << 20
	// MaxBatchItems caps the items of TokenizeBatch and DetokenizeBatch;
	// more is INVALID_ARGUMENT "oversized batch".
	MaxBatchItems = 1000
	// MaxConcurrentStreams caps concurrent calls per connection (HTTP/2
	// rapid-reset protection).
	MaxConcurrentStreams = 256
	// MaxRequestTimeout caps every call's deadline; DefaultRequestTimeout
	// applies to calls without one.
	MaxRequestTimeout     = 30 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	// KeepaliveMinTime is the shortest client ping interval the server
	// accepts; ClientKeepaliveTime (what ClientDialOptions uses) respects it.
	KeepaliveMinTime    = 10 * time.Second
	ClientKeepaliveTime = 30 * time.Second
	// healthPoll is how often the health status follows the Raft leader.
	healthPoll = 200 * time.Millisecond
)

// NewGRPCServer returns a gRPC server for n: TLS from tlsConf (which must
// require and verify client certificates, see pki.ServerConfig), the five
// panvault services, grpc.health.v1 (SERVING while the node knows a Raft
// leader, NOT_SERVING otherwise) and server reflection, with the limits
// above, keepalive enforcement, and the interceptors: panic recovery
// (INTERNAL, the panic value is never echoed), deadline cap,
// authentication and role check, refusal of unknown fields on TokenService,
// error mapping (status.go) and a debug log line per call.
//
// The caller serves it (Serve on a listener) and stops it before closing n.
func NewGRPCServer(n *Node, tlsConf *tls.Config) *grpc.Server {
	rec := recovery.WithRecoveryHandlerContext(n.recovered)
	s := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsConf)),
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.MaxSendMsgSize(MaxSendMsgSize),
		grpc.MaxConcurrentStreams(MaxConcurrentStreams),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             KeepaliveMinTime,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    2 * time.Minute,
			Timeout: 20 * time.Second,
		}),
		grpc.ChainUnaryInterceptor(n.unaryEdge, recovery.UnaryServerInterceptor(rec)),
		grpc.ChainStreamInterceptor(n.streamEdge, recovery.StreamServerInterceptor(rec)),
	)
	svc := &services{n: n}
	pb.RegisterTokenServiceServer(s, &tokenService{services: svc})
	pb.RegisterSigningServiceServer(s, &signingService{services: svc})
	pb.RegisterAdminServiceServer(s, &adminService{services: svc})
	pb.RegisterClusterServiceServer(s, &clusterService{services: svc})
	pb.RegisterCeremonyServiceServer(s, &ceremonyService{services: svc})

	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	n.wg.Add(1)
	go n.followHealth(hs)
	return s
}

// followHealth sets every service SERVING while the node knows a leader.
func (n *Node) followHealth(hs *health.Server) {
	defer n.wg.Done()
	services := []string{"",
		pb.TokenService_ServiceDesc.ServiceName, pb.SigningService_ServiceDesc.ServiceName,
		pb.AdminService_ServiceDesc.ServiceName, pb.ClusterService_ServiceDesc.ServiceName,
		pb.CeremonyService_ServiceDesc.ServiceName}
	set := func(st healthpb.HealthCheckResponse_ServingStatus) {
		for _, name := range services {
			hs.SetServingStatus(name, st)
		}
	}
	last := healthpb.HealthCheckResponse_UNKNOWN
	t := time.NewTicker(healthPoll)
	defer t.Stop()
	for {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if id, _ := n.store.Leader(); id != "" {
			st = healthpb.HealthCheckResponse_SERVING
		}
		if st != last {
			set(st)
			last = st
		}
		select {
		case <-t.C:
		case <-n.ctx.Done():
			hs.Shutdown() // NOT_SERVING for everyone still watching
			return
		}
	}
}

// ClientDialOptions returns the dial options a panvault client should use
// with tlsConf (see pki.ClientConfig): TLS credentials, keepalive pings no
// more often than the server allows, and message caps matching the server.
func ClientDialOptions(tlsConf *tls.Config) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                ClientKeepaliveTime,
			Timeout:             10 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxSendMsgSize),
			grpc.MaxCallSendMsgSize(MaxRecvMsgSize),
		),
	}
}
