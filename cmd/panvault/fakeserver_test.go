package main

import (
	"context"
	"crypto/rand"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/pki"
)

// A fake vault forces the failure paths a real one should never take: a
// proposal whose bytes do not match its id, and a "migration" to the same
// key version. The real server is used everywhere else (TestCeremonyCLI).

type lyingCeremonies struct {
	pb.UnimplementedCeremonyServiceServer
	shown, signed ceremony.Proposal
	approvals     atomic.Int32
}

func (l *lyingCeremonies) ListCustodians(context.Context, *pb.ListCustodiansRequest) (*pb.ListCustodiansResponse, error) {
	return &pb.ListCustodiansResponse{Quorum: 2}, nil
}

// GetCeremony announces the id of one proposal and carries the bytes of another.
func (l *lyingCeremonies) GetCeremony(_ context.Context, req *pb.GetCeremonyRequest) (*pb.GetCeremonyResponse, error) {
	shownID, _ := l.shown.ID()
	canon, _ := l.signed.Marshal()
	return &pb.GetCeremonyResponse{Ceremony: &pb.Ceremony{Id: shownID, Kind: pb.CeremonyKind_CEREMONY_KIND_ROTATE_KEY,
		Status: pb.CeremonyStatus_CEREMONY_STATUS_PENDING, Proposal: canon, Quorum: 2}}, nil
}

func (l *lyingCeremonies) Approve(context.Context, *pb.ApproveRequest) (*pb.ApproveResponse, error) {
	l.approvals.Add(1)
	return &pb.ApproveResponse{}, nil
}

type staleTokens struct {
	pb.UnimplementedTokenServiceServer
}

// Retokenize answers as a node that has not applied the rotation yet.
func (staleTokens) Retokenize(_ context.Context, req *pb.RetokenizeRequest) (*pb.RetokenizeResponse, error) {
	resp := &pb.RetokenizeResponse{ToKeyVersion: req.GetFromKeyVersion()}
	for i, it := range req.GetItems() {
		resp.Results = append(resp.Results, &pb.RetokenizeResult{Index: uint32(i), Outcome: &pb.RetokenizeResult_Success{
			Success: &pb.RetokenizeSuccess{Token: it.GetToken(), KeyVersion: req.GetFromKeyVersion()}}})
	}
	return resp, nil
}

// fakeVault serves the given services over mTLS on 127.0.0.1 and returns
// the connection flags for the CLI.
func fakeVault(t *testing.T, register func(*grpc.Server)) []string {
	t.Helper()
	ca, err := pki.NewDevCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := ca.Node("fake", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Client("payments")
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := pki.LoadServerTLS(node.Cert, node.Key, node.CA)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsConf)))
	register(s)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return []string{"--addr", lis.Addr().String(), "--cacert", client.CA, "--cert", client.Cert, "--key", client.Key, "--timeout", "10s"}
}

func TestApproveRefusesMismatchedProposal(t *testing.T) {
	now := time.Now().UTC()
	shown, err := ceremony.NewProposal(ceremony.RotateKey{Name: "pan-encryption"}, "admin", now, time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := ceremony.NewProposal(ceremony.DestroyVersion{Name: "pan-encryption", Version: 1}, "admin", now, time.Hour, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fake := &lyingCeremonies{shown: shown, signed: signed}
	flags := fakeVault(t, func(s *grpc.Server) { pb.RegisterCeremonyServiceServer(s, fake) })
	keyFile := filepath.Join(t.TempDir(), "alice.pem")
	if _, err := ceremony.GenerateKeyFile(keyFile, ceremony.AlgEd25519); err != nil {
		t.Fatal(err)
	}
	id, _ := shown.ID()
	code, out, stderr := runCLI(t, "", append([]string{"ceremony", "approve", id, "--custodian-key", keyFile, "--yes"}, flags...)...)
	if code != 1 || !strings.Contains(stderr, "refusing it") || strings.Contains(out, "DESTROY") {
		t.Fatalf("approve of a mismatched proposal: %d %q %q", code, out, stderr)
	}
	if n := fake.approvals.Load(); n != 0 {
		t.Fatalf("%d approvals sent for a mismatched proposal", n)
	}
}

func TestRetokenizeRefusesNonMigration(t *testing.T) {
	flags := fakeVault(t, func(s *grpc.Server) { pb.RegisterTokenServiceServer(s, staleTokens{}) })
	code, out, stderr := runCLI(t, "", append([]string{"retokenize", "--scheme", "pan-ff1", "--from-version", "1", "4111116654509701"}, flags...)...)
	if code != 1 || !strings.Contains(stderr, "nothing was migrated") || strings.Contains(out+stderr, "4111116654509701") {
		t.Fatalf("retokenize to the same version: %d %q %q", code, out, stderr)
	}
}
