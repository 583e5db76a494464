package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

func TestAuthorizer(t *testing.T) {
	ops, pay, n1, both := AdminIdentity("ops"), ClientIdentity("payments"), NodeIdentity("n1"), "urn:panvault:operator-with-client"
	a, err := NewAuthorizer(AuthzConfig{
		Admins:  []string{ops, both},
		Clients: []string{pay, both},
		Nodes:   []string{n1},
	})
	if err != nil {
		t.Fatalf("NewAuthorizer: %v", err)
	}
	tests := []struct {
		id        string
		allowed   Role
		wantRoles Role
		wantErr   error
	}{
		{ops, RoleAdmin, RoleAdmin, nil},
		{ops, RoleClient | RoleAdmin, RoleAdmin, nil},
		{ops, RoleClient, RoleAdmin, ErrPermissionDenied},
		{pay, RoleClient, RoleClient, nil},
		{pay, RoleAdmin, RoleClient, ErrPermissionDenied},
		{pay, RoleNode, RoleClient, ErrPermissionDenied},
		{n1, RoleNode, RoleNode, nil},
		{n1, RoleAdmin, RoleNode, ErrPermissionDenied},
		{both, RoleAdmin, RoleAdmin | RoleClient, nil},
		{both, RoleClient, RoleAdmin | RoleClient, nil},
		{both, RoleNode, RoleAdmin | RoleClient, ErrPermissionDenied},
		{ClientIdentity("stranger"), RoleClient, 0, ErrUnknownIdentity},
		{"", RoleClient, 0, ErrUnknownIdentity},
		// Identities are exact strings: no prefix, case or trailing-slash games.
		{ops + "/", RoleAdmin, 0, ErrUnknownIdentity},
		{strings.ToUpper(ops), RoleAdmin, 0, ErrUnknownIdentity},
		{ops, 0, RoleAdmin, ErrPermissionDenied}, // an action nobody may do
	}
	for _, tc := range tests {
		roles, err := a.Authorize(tc.id, tc.allowed)
		if roles != tc.wantRoles || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("Authorize(%q, %s) = %s, %v; want %s, %v", tc.id, tc.allowed, roles, err, tc.wantRoles, tc.wantErr)
		}
		if tc.wantErr != nil && !errors.Is(err, ErrPermissionDenied) {
			t.Errorf("Authorize(%q, %s): %v does not wrap ErrPermissionDenied", tc.id, tc.allowed, err)
		}
		if got := a.Roles(tc.id); got != tc.wantRoles {
			t.Errorf("Roles(%q) = %s, want %s", tc.id, got, tc.wantRoles)
		}
	}
	// A known identity lacking the role is not reported as unknown.
	if _, err := a.Authorize(pay, RoleAdmin); errors.Is(err, ErrUnknownIdentity) {
		t.Errorf("known identity reported as unknown: %v", err)
	}
}

func TestEmptyAuthorizerDeniesEveryone(t *testing.T) {
	a, err := NewAuthorizer(AuthzConfig{})
	if err != nil {
		t.Fatalf("NewAuthorizer: %v", err)
	}
	for _, r := range []Role{RoleClient, RoleAdmin, RoleNode} {
		if _, err := a.Authorize(AdminIdentity("ops"), r); !errors.Is(err, ErrUnknownIdentity) {
			t.Errorf("empty authorizer, role %s: %v; want ErrUnknownIdentity", r, err)
		}
	}
}

func TestAuthzConfigErrors(t *testing.T) {
	ok := ClientIdentity("payments")
	tests := []struct {
		name string
		cfg  AuthzConfig
		key  string
	}{
		{"empty", AuthzConfig{Clients: []string{ok, ""}}, "clients[1]"},
		{"spaces", AuthzConfig{Admins: []string{" " + ok}}, "admins[0]"},
		{"trailing newline", AuthzConfig{Nodes: []string{NodeIdentity("n1") + "\n"}}, "nodes[0]"},
		{"control character", AuthzConfig{Admins: []string{"urn:a\x00b"}}, "admins[0]"},
		{"invalid utf-8", AuthzConfig{Clients: []string{"urn:\xff"}}, "clients[0]"},
		{"duplicate in one list", AuthzConfig{Clients: []string{ok, ClientIdentity("other"), ok}}, "clients[2]"},
	}
	for _, tc := range tests {
		a, err := NewAuthorizer(tc.cfg)
		if a != nil || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: got %v, %v; want ErrInvalidConfig", tc.name, a != nil, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: error %q does not name %s", tc.name, err, tc.key)
		}
	}
}

func TestRoleString(t *testing.T) {
	for r, want := range map[Role]string{
		0:                      "none",
		RoleClient:             "client",
		RoleAdmin:              "admin",
		RoleNode:               "node",
		RoleAdmin | RoleClient: "client|admin",
		RoleNode | 0x80:        "node|Role(0x80)",
	} {
		if got := r.String(); got != want {
			t.Errorf("Role(%#x).String() = %q, want %q", uint8(r), got, want)
		}
	}
}

// BenchmarkAuthorizePeer measures the per-call cost of authorization at the
// gRPC edge: finding the verified leaf, naming its identity, looking it up.
func BenchmarkAuthorizePeer(b *testing.B) {
	ca, err := NewCA()
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := ca.IssueClient("payments")
	if err != nil {
		b.Fatal(err)
	}
	a, err := NewAuthorizer(AuthzConfig{Clients: []string{ClientIdentity("payments")}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := peer.NewContext(context.Background(), &peer.Peer{
		Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1},
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{
			VerifiedChains: [][]*x509.Certificate{{leaf.Cert, ca.Certificate()}},
		}},
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := a.AuthorizePeer(ctx, RoleClient); err != nil {
			b.Fatal(err)
		}
	}
}
