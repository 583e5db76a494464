package pki_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/panvault/panvault/vault/pki"
	"github.com/panvault/panvault/vault/pki/pkitest"
)

// Headers in which the test server echoes what it learnt about the caller.
const (
	identityHeader = "x-test-identity"
	rolesHeader    = "x-test-roles"
)

// authzInterceptor authorizes every call for the roles in allowed, the way the
// vault's edge does, and echoes the caller's identity and roles in headers.
func authzInterceptor(a *pki.Authorizer, allowed pki.Role) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		id, roles, err := a.AuthorizePeer(ctx, allowed)
		switch {
		case errors.Is(err, pki.ErrUnauthenticated):
			return nil, status.Error(codes.Unauthenticated, err.Error())
		case errors.Is(err, pki.ErrPermissionDenied):
			return nil, status.Error(codes.PermissionDenied, err.Error())
		case err != nil:
			return nil, status.Error(codes.Internal, err.Error())
		}
		if err := grpc.SetHeader(ctx, metadata.Pairs(identityHeader, id, rolesHeader, roles.String())); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// startGRPC serves the standard health service over mTLS on 127.0.0.1,
// allowing admins and nodes.
func startGRPC(t *testing.T, serverTLS *tls.Config, a *pki.Authorizer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(serverTLS)),
		grpc.UnaryInterceptor(authzInterceptor(a, pki.RoleAdmin|pki.RoleNode)),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// check calls Health.Check as the holder of clientTLS and returns the echoed
// headers.
func check(t *testing.T, addr string, clientTLS *tls.Config) (metadata.MD, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS)))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var header metadata.MD
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header))
	if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health status %v", resp.GetStatus())
	}
	return header, err
}

func TestGRPCServerReadsCallerIdentity(t *testing.T) {
	ca := pkitest.NewCA(t)
	a, err := pki.NewAuthorizer(pki.AuthzConfig{
		Admins:  []string{pki.AdminIdentity("ops")},
		Clients: []string{pki.ClientIdentity("payments")},
		Nodes:   []string{pki.NodeIdentity("n1"), pki.NodeIdentity("n2")},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := startGRPC(t, ca.Server("n1"), a)
	_, n2 := ca.Node("n2")

	allowed := []struct {
		name      string
		tls       *tls.Config
		wantID    string
		wantRoles string
	}{
		{"admin", ca.Admin("ops"), pki.AdminIdentity("ops"), "admin"},
		{"another node", n2, pki.NodeIdentity("n2"), "node"},
	}
	for _, tc := range allowed {
		md, err := check(t, addr, tc.tls)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := md.Get(identityHeader); len(got) != 1 || got[0] != tc.wantID {
			t.Errorf("%s: server saw identity %v, want %q", tc.name, got, tc.wantID)
		}
		if got := md.Get(rolesHeader); len(got) != 1 || got[0] != tc.wantRoles {
			t.Errorf("%s: server saw roles %v, want %q", tc.name, got, tc.wantRoles)
		}
	}

	noCert := ca.Client("payments")
	noCert.Certificates = nil
	denied := []struct {
		name string
		tls  *tls.Config
		code codes.Code
	}{
		{"client role on an admin call", ca.Client("payments"), codes.PermissionDenied},
		{"unknown identity from the right CA", ca.Admin("mallory"), codes.PermissionDenied},
		{"certificate from another CA", foreignClient(t, ca), codes.Unavailable},
		{"no client certificate", noCert, codes.Unavailable},
	}
	for _, tc := range denied {
		md, err := check(t, addr, tc.tls)
		if status.Code(err) != tc.code {
			t.Errorf("%s: got %v, want code %v", tc.name, err, tc.code)
		}
		if len(md.Get(identityHeader)) != 0 {
			t.Errorf("%s: handler ran for a refused caller", tc.name)
		}
	}
}

// foreignClient returns a client config that trusts ca's servers but presents a
// certificate from another CA, whatever the server asks for.
func foreignClient(t *testing.T, ca *pkitest.CA) *tls.Config {
	t.Helper()
	leaf, err := pkitest.NewCA(t).IssueAdmin("ops") // same identity, wrong issuer
	if err != nil {
		t.Fatal(err)
	}
	cfg := pki.ClientConfig(leaf.TLSCertificate(), ca.Pool())
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c := leaf.TLSCertificate()
		return &c, nil
	}
	return cfg
}

// Without transport security a call carries no identity: the authorizer
// refuses it as unauthenticated.
func TestGRPCWithoutTLSIsUnauthenticated(t *testing.T) {
	a, err := pki.NewAuthorizer(pki.AuthzConfig{Admins: []string{pki.AdminIdentity("ops")}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(authzInterceptor(a, pki.RoleAdmin)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Stop()
		<-served
	}()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("plaintext call: %v, want Unauthenticated", err)
	}
}
