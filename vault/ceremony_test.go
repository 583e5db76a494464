package vault_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/vaulttest"
)

// TestCeremonyRefusals checks what a ceremony refuses: an approval by an
// unregistered key, a second approval by the same custodian, a signature
// over another proposal's transcript, the proposer approving their own
// proposal, an expired proposal; and that rejections close a proposal,
// initialisation happens once, keys need ceremonies once custodians exist,
// and the log audits.
func TestCeremonyRefusals(t *testing.T) {
	c := vaulttest.StartClusterWith(t, 3, vaulttest.Options{Tune: fastJobs})
	c.Setup(t)
	ctx := ctxT(t)

	// "ops" is also the admin identity's name: when the admin proposes,
	// the proposer is custodian ops.
	ops, bob, carol := vaulttest.NewCustodian(t, vaulttest.AdminName), vaulttest.NewCustodian(t, "bob"), vaulttest.NewCustodian(t, "carol")
	init := &pb.InitCustodiansRequest{Quorum: 2}
	for _, cu := range []*vaulttest.Custodian{ops, bob, carol} {
		init.Custodians = append(init.Custodians, cu.Registration(t, c.Clock.Now()))
	}
	cer := c.Ceremonies(t, 1)
	if _, err := cer.Propose(ctx, &pb.ProposeRequest{Params: rotate(vault.DevKeyPAN)}); reason(err) != "CUSTODIANS_NOT_INITIALISED" {
		t.Fatalf("propose before init: %v", err)
	}
	r, err := cer.InitCustodians(ctx, init)
	if err != nil || !r.GetCreated() || len(r.GetCustodians()) != 3 || r.GetQuorum() != 2 {
		t.Fatalf("init: %v %v", r, err)
	}
	if r, err := c.Ceremonies(t, 2).InitCustodians(ctx, init); err != nil || r.GetCreated() {
		t.Fatalf("repeated identical init: %v %v", r, err)
	}
	init.Quorum = 3
	if _, err := cer.InitCustodians(ctx, init); codeOf(err) != codes.AlreadyExists || reason(err) != "CUSTODIANS_INITIALISED" {
		t.Fatalf("second init with another quorum: %v", err)
	}
	list, err := c.ClientCeremonies(t, 0).ListCustodians(ctx, &pb.ListCustodiansRequest{})
	if err != nil || len(list.GetCustodians()) != 3 || list.GetCustodians()[0].GetName() != "bob" || list.GetCustodians()[0].GetAlgorithm() != "ed25519" {
		t.Fatalf("list custodians: %v %v", list, err)
	}

	// Keys are created by ceremony now; existing ones are still returned.
	if _, err := c.Admin(t, 0).CreateKey(ctx, &pb.CreateKeyRequest{Name: "direct", Type: pb.KeyType_KEY_TYPE_AES256,
		Purpose: pb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION}); codeOf(err) != codes.FailedPrecondition || reason(err) != "CEREMONY_REQUIRED" {
		t.Fatalf("direct CreateKey after init: %v", err)
	}
	if r, err := c.Admin(t, 0).CreateKey(ctx, &pb.CreateKeyRequest{Name: vault.DevKeyPAN, Type: pb.KeyType_KEY_TYPE_AES256,
		Purpose: pb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION}); err != nil || r.GetCreated() {
		t.Fatalf("CreateKey of an existing key: %v %v", r, err)
	}
	// Only admins propose.
	if _, err := c.ClientCeremonies(t, 0).Propose(ctx, &pb.ProposeRequest{Params: rotate(vault.DevKeyPAN)}); codeOf(err) != codes.PermissionDenied {
		t.Fatalf("propose as a client: %v", err)
	}
	// Proposals the vault can tell are wrong are refused before any vote.
	for _, tc := range []struct {
		params *pb.CeremonyParams
		code   codes.Code
	}{
		{rotate("no-such-key"), codes.NotFound},
		{destroy(vault.DevKeyPAN, 1), codes.FailedPrecondition},
		{setMin(vault.DevKeyPAN, 2), codes.NotFound},
		{&pb.CeremonyParams{}, codes.InvalidArgument},
		{&pb.CeremonyParams{Params: &pb.CeremonyParams_ChangeQuorum{ChangeQuorum: &pb.ChangeQuorumParams{Quorum: 4}}}, codes.FailedPrecondition},
	} {
		if _, err := cer.Propose(ctx, &pb.ProposeRequest{Params: tc.params}); codeOf(err) != tc.code {
			t.Fatalf("propose %v: %v, want %v", tc.params, err, tc.code)
		}
	}

	pa, err := cer.Propose(ctx, &pb.ProposeRequest{Params: rotate(vault.DevKeyPAN)})
	if err != nil {
		t.Fatalf("propose: %v", err)
	}
	a := pa.GetCeremony()
	if a.GetProposer() != vaulttest.AdminName || a.GetQuorum() != 2 || a.GetKind() != pb.CeremonyKind_CEREMONY_KIND_ROTATE_KEY {
		t.Fatalf("proposal: %v", a)
	}
	pbB, err := cer.Propose(ctx, &pb.ProposeRequest{Params: rotate(vault.DevKeyFF1)})
	if err != nil {
		t.Fatalf("propose b: %v", err)
	}
	b := pbB.GetCeremony()
	cl := c.ClientCeremonies(t, 2)

	// The proposer may not approve.
	if _, err := ops.Approve(ctx, t, cl, a.GetId()); codeOf(err) != codes.PermissionDenied || reason(err) != "SELF_APPROVAL" {
		t.Fatalf("self approval: %v", err)
	}
	// An unregistered key, under a registered name and under its own.
	mallory := vaulttest.NewCustodian(t, "mallory")
	pA := vaulttest.FetchProposal(ctx, t, cl, a.GetId())
	sig, err := ceremony.SignApproval(mallory.Signer, "bob", pA)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Approve(ctx, &pb.ApproveRequest{Id: a.GetId(), Custodian: "bob", KeyFingerprint: sig.Key[:], Signature: sig.Signature}); codeOf(err) != codes.PermissionDenied || reason(err) != "CUSTODIAN_KEY_MISMATCH" {
		t.Fatalf("approval by an unregistered key for bob: %v", err)
	}
	if _, err := mallory.Approve(ctx, t, cl, a.GetId()); codeOf(err) != codes.PermissionDenied || reason(err) != "UNKNOWN_CUSTODIAN" {
		t.Fatalf("approval by an unregistered custodian: %v", err)
	}
	// bob's signature over b's transcript, presented for a.
	pB := vaulttest.FetchProposal(ctx, t, cl, b.GetId())
	other, err := ceremony.SignApproval(bob.Signer, "bob", pB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Approve(ctx, &pb.ApproveRequest{Id: a.GetId(), Custodian: "bob", KeyFingerprint: other.Key[:], Signature: other.Signature}); codeOf(err) != codes.PermissionDenied || reason(err) != "BAD_SIGNATURE" {
		t.Fatalf("signature over another transcript: %v", err)
	}
	// One approval counts once.
	r1, err := bob.Approve(ctx, t, cl, a.GetId())
	if err != nil || r1.GetExecuted() || r1.GetCeremony().GetValidApprovals() != 1 {
		t.Fatalf("first approval: %v %v", r1, err)
	}
	if _, err := bob.Approve(ctx, t, c.ClientCeremonies(t, 0), a.GetId()); codeOf(err) != codes.AlreadyExists || reason(err) != "DUPLICATE_APPROVAL" {
		t.Fatalf("second approval by bob: %v", err)
	}
	// The proposer (ops) cannot approve b, so bob's rejection leaves it
	// without a reachable quorum: rejected at once.
	if r, err := bob.Reject(ctx, t, cl, b.GetId(), "not scheduled"); err != nil || r.GetCeremony().GetStatus() != pb.CeremonyStatus_CEREMONY_STATUS_REJECTED {
		t.Fatalf("rejection: %v %v", r, err)
	}
	if _, err := carol.Reject(ctx, t, cl, b.GetId(), "agreed"); codeOf(err) != codes.FailedPrecondition || reason(err) != "PROPOSAL_CLOSED" {
		t.Fatalf("rejection of a closed proposal: %v", err)
	}
	if _, err := bob.Approve(ctx, t, cl, b.GetId()); codeOf(err) != codes.FailedPrecondition || reason(err) != "PROPOSAL_CLOSED" {
		t.Fatalf("approval of a rejected proposal: %v", err)
	}
	// carol completes a: executed.
	r2, err := carol.Approve(ctx, t, c.ClientCeremonies(t, 1), a.GetId())
	if err != nil || !r2.GetExecuted() {
		t.Fatalf("second approval: %v %v", r2, err)
	}
	if k, err := c.Admin(t, 2).GetKey(ctx, &pb.GetKeyRequest{Name: vault.DevKeyPAN}); err != nil || k.GetKey().GetLatestVersion() != 2 {
		t.Fatalf("key after rotation: %v %v", k, err)
	}

	// An expired proposal takes no approval, and the sweep closes it.
	pe, err := cer.Propose(ctx, &pb.ProposeRequest{Params: rotate(vault.DevKeyFingerprint), Ttl: durationpb.New(time.Minute)})
	if err != nil {
		t.Fatalf("propose short-lived: %v", err)
	}
	c.Clock.Advance(2 * time.Minute)
	if _, err := bob.Approve(ctx, t, cl, pe.GetCeremony().GetId()); codeOf(err) != codes.FailedPrecondition ||
		(reason(err) != "PROPOSAL_EXPIRED" && reason(err) != "PROPOSAL_CLOSED") {
		t.Fatalf("approval of an expired proposal: %v", err)
	}
	waitFor(t, "sweep expires the proposal", func() bool {
		g, err := cl.GetCeremony(ctx, &pb.GetCeremonyRequest{Id: pe.GetCeremony().GetId()})
		return err == nil && g.GetCeremony().GetStatus() == pb.CeremonyStatus_CEREMONY_STATUS_EXPIRED
	})
	if _, err := cl.GetCeremony(ctx, &pb.GetCeremonyRequest{Id: "00000000000000ff"}); codeOf(err) != codes.NotFound {
		t.Fatalf("unknown ceremony: %v", err)
	}
	if _, err := cl.GetCeremony(ctx, &pb.GetCeremonyRequest{Id: "not-an-id"}); codeOf(err) != codes.InvalidArgument {
		t.Fatalf("malformed id: %v", err)
	}

	// Registry ceremonies: add dave, then require 3 approvals.
	dave := vaulttest.NewCustodian(t, "dave")
	runCeremony(ctx, t, c, 0, &pb.CeremonyParams{Params: &pb.CeremonyParams_AddCustodian{AddCustodian: &pb.AddCustodianParams{
		Custodian: dave.Registration(t, c.Clock.Now())}}}, bob, carol)
	runCeremony(ctx, t, c, 0, &pb.CeremonyParams{Params: &pb.CeremonyParams_ChangeQuorum{ChangeQuorum: &pb.ChangeQuorumParams{Quorum: 3}}}, dave, bob)
	runCeremony(ctx, t, c, 0, rotate(vault.DevKeySigning), bob, carol, dave)

	// Listing, log and audit.
	all, err := cl.ListCeremonies(ctx, &pb.ListCeremoniesRequest{PageSize: 2})
	if err != nil || len(all.GetCeremonies()) != 2 || all.GetNextPageToken() == "" {
		t.Fatalf("list page 1: %v %v", all, err)
	}
	rest, err := cl.ListCeremonies(ctx, &pb.ListCeremoniesRequest{PageToken: all.GetNextPageToken()})
	if err != nil || len(rest.GetCeremonies()) != 4 {
		t.Fatalf("list page 2: %d %v", len(rest.GetCeremonies()), err)
	}
	executed, err := cl.ListCeremonies(ctx, &pb.ListCeremoniesRequest{Status: pb.CeremonyStatus_CEREMONY_STATUS_EXECUTED})
	if err != nil || len(executed.GetCeremonies()) != 4 {
		t.Fatalf("executed ceremonies: %d %v", len(executed.GetCeremonies()), err)
	}
	lg, err := cl.GetCeremonyLog(ctx, &pb.GetCeremonyLogRequest{})
	if err != nil {
		t.Fatalf("log: %v", err)
	}
	var entries []ceremony.LogEntry
	for _, e := range lg.GetEntries() {
		pe, err := ceremony.ParseEntry(e.GetRaw())
		if err != nil {
			t.Fatalf("log entry %d: %v", e.GetSeq(), err)
		}
		entries = append(entries, pe)
	}
	if err := ceremony.VerifyChain(entries); err != nil || uint64(len(entries)) != lg.GetHeadSeq() {
		t.Fatalf("log chain of %d entries (head %d): %v", len(entries), lg.GetHeadSeq(), err)
	}
	if _, err := ceremony.Replay(entries); err != nil {
		t.Fatalf("client-side replay: %v", err)
	}
	audit, err := cl.AuditCeremonyLog(ctx, &pb.AuditCeremonyLogRequest{})
	if err != nil || audit.GetEntries() != lg.GetHeadSeq() || audit.GetCeremoniesByStatus()["executed"] != 4 ||
		audit.GetCeremoniesByStatus()["rejected"] != 1 || audit.GetCeremoniesByStatus()["expired"] != 1 {
		t.Fatalf("audit: %v %v", audit, err)
	}
}
