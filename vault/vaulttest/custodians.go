package vaulttest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/ceremony"
)

// DevCustodians are the names InitCustodians registers, as `panvault dev`
// does; DevQuorum is their quorum.
var DevCustodians = []string{"alice", "bob", "carol"}

// DevQuorum is the quorum InitCustodians sets.
const DevQuorum = 2

// Custodian is a test key custodian: a name and an Ed25519 key file in a
// temporary directory (as `panvault dev` keeps them in DIR/custodians/).
// Safe for concurrent use.
type Custodian struct {
	Name   string
	Path   string
	Signer *ceremony.FileSigner
}

// NewCustodian creates custodian name with a fresh key file in a temporary
// directory of tb.
func NewCustodian(tb testing.TB, name string) *Custodian {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name+".pem")
	s, err := ceremony.GenerateKeyFile(path, ceremony.AlgEd25519)
	if err != nil {
		tb.Fatalf("vaulttest: custodian key %s: %v", name, err)
	}
	return &Custodian{Name: name, Path: path, Signer: s}
}

// Registration signs the custodian's acknowledgement of duties at at and
// returns it in API form.
func (cu *Custodian) Registration(tb testing.TB, at time.Time) *pb.CustodianRegistration {
	tb.Helper()
	c, err := ceremony.SignAcknowledgement(cu.Signer, cu.Name, at)
	if err != nil {
		tb.Fatalf("vaulttest: acknowledgement of %s: %v", cu.Name, err)
	}
	return &pb.CustodianRegistration{Name: c.Name, PublicKeyDer: c.PublicKey,
		AcknowledgeTime: timestamppb.New(c.Acknowledged), AckSignature: c.AckSignature}
}

// Approve fetches ceremony id through cc, parses its canonical proposal
// bytes, signs its transcript (computed here, never taken from the server)
// and sends the approval. The RPC error is returned for tests of refusals.
func (cu *Custodian) Approve(ctx context.Context, tb testing.TB, cc pb.CeremonyServiceClient, id string) (*pb.ApproveResponse, error) {
	tb.Helper()
	p := FetchProposal(ctx, tb, cc, id)
	a, err := ceremony.SignApproval(cu.Signer, cu.Name, p)
	if err != nil {
		tb.Fatalf("vaulttest: sign approval: %v", err)
	}
	return cc.Approve(ctx, &pb.ApproveRequest{Id: id, Custodian: a.Custodian, KeyFingerprint: a.Key[:], Signature: a.Signature})
}

// Reject is Approve for a rejection with reason.
func (cu *Custodian) Reject(ctx context.Context, tb testing.TB, cc pb.CeremonyServiceClient, id, reason string) (*pb.RejectResponse, error) {
	tb.Helper()
	p := FetchProposal(ctx, tb, cc, id)
	r, err := ceremony.SignRejection(cu.Signer, cu.Name, p, reason)
	if err != nil {
		tb.Fatalf("vaulttest: sign rejection: %v", err)
	}
	return cc.Reject(ctx, &pb.RejectRequest{Id: id, Custodian: r.Custodian, KeyFingerprint: r.Key[:], Reason: r.Reason, Signature: r.Signature})
}

// FetchProposal reads ceremony id and parses its canonical bytes, checking
// that the server's id and transcript hash match what the bytes give.
func FetchProposal(ctx context.Context, tb testing.TB, cc pb.CeremonyServiceClient, id string) ceremony.Proposal {
	tb.Helper()
	got, err := cc.GetCeremony(ctx, &pb.GetCeremonyRequest{Id: id})
	if err != nil {
		tb.Fatalf("vaulttest: get ceremony %s: %v", id, err)
	}
	p, err := ceremony.ParseProposal(got.GetCeremony().GetProposal())
	if err != nil {
		tb.Fatalf("vaulttest: parse proposal %s: %v", id, err)
	}
	h, err := p.Transcript()
	if err != nil {
		tb.Fatalf("vaulttest: transcript of %s: %v", id, err)
	}
	if h.ID() != id || h.String() != got.GetCeremony().GetTranscriptHash() {
		tb.Fatalf("vaulttest: ceremony %s: server's id or transcript hash does not match its proposal bytes", id)
	}
	return p
}

// InitCustodians creates the DevCustodians with key files in temporary
// directories and registers them with quorum DevQuorum through node 0's
// CeremonyService (as the admin), as `panvault dev` does.
func (c *Cluster) InitCustodians(tb testing.TB) []*Custodian {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var cs []*Custodian
	req := &pb.InitCustodiansRequest{Quorum: DevQuorum}
	for _, name := range DevCustodians {
		cu := NewCustodian(tb, name)
		cs = append(cs, cu)
		req.Custodians = append(req.Custodians, cu.Registration(tb, c.Clock.Now()))
	}
	if _, err := c.Ceremonies(tb, 0).InitCustodians(ctx, req); err != nil {
		tb.Fatalf("vaulttest: init custodians: %v", err)
	}
	return cs
}

// Ceremonies returns a CeremonyService client of node i as AdminName.
func (c *Cluster) Ceremonies(tb testing.TB, i int) pb.CeremonyServiceClient {
	tb.Helper()
	return pb.NewCeremonyServiceClient(c.AdminConn(tb, i))
}

// ClientCeremonies returns a CeremonyService client of node i as
// ClientName (custodians approve through any authenticated identity).
func (c *Cluster) ClientCeremonies(tb testing.TB, i int) pb.CeremonyServiceClient {
	tb.Helper()
	return pb.NewCeremonyServiceClient(c.ClientConn(tb, i))
}
