package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/pki"
)

// A fake vault forces the failure paths a real one should never take: a
// proposal whose bytes do not match its id, a "migration" to the same key
// version, and requests whose outcome is unknown. The real server is used everywhere else (TestCeremonyCLI).

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
	return []string{"--addr", lis.Addr().String(), "--cacert", client.CA, "--cert", client.Cert, "--tls-key", client.Key, "--timeout", "10s"}
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

// flaky fails the first call of every method with first (a status that
// leaves the outcome unknown) and lets later calls succeed, counting the
// calls of each method.
type flaky struct {
	first error
	mu    sync.Mutex
	calls map[string]int
}

func (f *flaky) answer(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	if f.calls[method] == 1 {
		return f.first
	}
	return nil
}

func (f *flaky) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

type flakyCluster struct {
	pb.UnimplementedClusterServiceServer
	*flaky
}

func (f flakyCluster) Join(context.Context, *pb.JoinRequest) (*pb.JoinResponse, error) {
	if err := f.answer("Join"); err != nil {
		return nil, err
	}
	return &pb.JoinResponse{}, nil
}

func (f flakyCluster) Remove(context.Context, *pb.RemoveRequest) (*pb.RemoveResponse, error) {
	if err := f.answer("Remove"); err != nil {
		return nil, err
	}
	return &pb.RemoveResponse{}, nil
}

func (f flakyCluster) TransferLeadership(_ context.Context, req *pb.TransferLeadershipRequest) (*pb.TransferLeadershipResponse, error) {
	if err := f.answer("TransferLeadership"); err != nil {
		return nil, err
	}
	return &pb.TransferLeadershipResponse{LeaderId: req.GetTargetNodeId()}, nil
}

type flakyAdmin struct {
	pb.UnimplementedAdminServiceServer
	*flaky
}

func (f flakyAdmin) CreateScheme(_ context.Context, req *pb.CreateSchemeRequest) (*pb.CreateSchemeResponse, error) {
	if err := f.answer("CreateScheme"); err != nil {
		return nil, err
	}
	return &pb.CreateSchemeResponse{Scheme: req.GetScheme()}, nil
}

type flakyCeremonies struct {
	pb.UnimplementedCeremonyServiceServer
	*flaky
}

func (f flakyCeremonies) Propose(context.Context, *pb.ProposeRequest) (*pb.ProposeResponse, error) {
	if err := f.answer("Propose"); err != nil {
		return nil, err
	}
	return nil, status.Error(codes.AlreadyExists, "a second proposal was sent")
}

// An admin request whose outcome is unknown (OUTCOME_UNKNOWN, or a
// deadline) is sent again only when it is idempotent; otherwise the command
// fails with the status and names the command that shows whether it took
// effect.
func TestAdminRetriesOnlyIdempotentOnUnknownOutcome(t *testing.T) {
	unknown := outcomeUnknownStatus(t)
	deadline := status.Error(codes.DeadlineExceeded, "deadline exceeded")
	for _, tc := range []struct {
		name      string
		args      []string
		method    string
		wantCalls int
		wantCode  int
		wantOut   string
		wantErr   string
	}{
		{"cluster remove", []string{"cluster", "remove", "node2"}, "Remove", 1, 1, "", "check with `panvault cluster status`"},
		{"cluster transfer", []string{"cluster", "transfer", "node2"}, "TransferLeadership", 1, 1, "", "check with `panvault cluster status`"},
		{"ceremony propose", []string{"ceremony", "propose", "rotate-key", "pan-encryption"}, "Propose", 1, 1, "",
			"check with `panvault ceremony list --status pending`"},
		{"cluster join", []string{"cluster", "join", "node4", "127.0.0.1:7004"}, "Join", 2, 0, "node node4 already a member", ""},
		{"scheme create", []string{"scheme", "create", "pan", "--mode", "vaulted", "--key", "pan-encryption"}, "CreateScheme", 2, 0,
			"scheme pan exists (identical)", ""},
	} {
		for _, first := range []error{unknown, deadline} {
			t.Run(tc.name+"/"+status.Code(first).String(), func(t *testing.T) {
				f := &flaky{first: first, calls: map[string]int{}}
				flags := fakeVault(t, func(s *grpc.Server) {
					pb.RegisterClusterServiceServer(s, flakyCluster{flaky: f})
					pb.RegisterAdminServiceServer(s, flakyAdmin{flaky: f})
					pb.RegisterCeremonyServiceServer(s, flakyCeremonies{flaky: f})
				})
				// `scheme create --key` names the scheme's key; the client's
				// TLS key is --tls-key.
				code, out, stderr := runCLI(t, "", append(append([]string(nil), tc.args...), flags...)...)
				if n := f.count(tc.method); n != tc.wantCalls {
					t.Errorf("%s sent %d times, want %d", tc.method, n, tc.wantCalls)
				}
				if code != tc.wantCode || !strings.Contains(out, tc.wantOut) || !strings.Contains(stderr, tc.wantErr) {
					t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, %q on stdout, %q on stderr",
						code, out, stderr, tc.wantCode, tc.wantOut, tc.wantErr)
				}
				if tc.wantCode != 0 && !strings.Contains(stderr, codeName(status.Code(first))) {
					t.Errorf("stderr %q does not give the code %s", stderr, codeName(status.Code(first)))
				}
			})
		}
	}
}

// pagedSchemes serves two pages of schemes; the first request for the
// second page fails with UNAVAILABLE.
type pagedSchemes struct {
	pb.UnimplementedAdminServiceServer
	mu     sync.Mutex
	tokens []string
}

func (p *pagedSchemes) ListSchemes(_ context.Context, req *pb.ListSchemesRequest) (*pb.ListSchemesResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens = append(p.tokens, req.GetPageToken())
	switch {
	case req.GetPageToken() == "":
		return &pb.ListSchemesResponse{Schemes: []*pb.Scheme{{Name: "pan"}}, NextPageToken: "page2"}, nil
	case len(p.tokens) == 2:
		return nil, status.Error(codes.Unavailable, "no leader")
	}
	return &pb.ListSchemesResponse{Schemes: []*pb.Scheme{{Name: "pan-ff1"}}}, nil
}

// A list command follows the page tokens to the end, and a page that fails
// is asked for again with the same token.
func TestListFollowsPages(t *testing.T) {
	fake := &pagedSchemes{}
	flags := fakeVault(t, func(s *grpc.Server) { pb.RegisterAdminServiceServer(s, fake) })
	code, out, stderr := runCLI(t, "", append([]string{"scheme", "list", "-o", "json"}, flags...)...)
	var got struct{ Schemes []struct{ Name string } }
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got.Schemes) != 2 ||
		got.Schemes[0].Name != "pan" || got.Schemes[1].Name != "pan-ff1" {
		t.Fatalf("scheme list: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if !slices.Equal(fake.tokens, []string{"", "page2", "page2"}) {
		t.Fatalf("page tokens sent %q", fake.tokens)
	}
}
