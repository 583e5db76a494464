package vault_test

import (
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/audit"
)

// TestAuditTrail: detokenize, sign and administrative calls are recorded in
// the node's hash-chained audit log with the caller, method and outcome,
// masked forms only; tokenize is not recorded. When the log cannot take an
// entry the call fails UNAVAILABLE (AUDIT_UNAVAILABLE) and its answer, the
// PAN, never leaves.
func TestAuditTrail(t *testing.T) {
	c := devCluster(t)
	ctx := ctxT(t)
	pan := testPAN(t, "411111", 16, 9001)
	tk, err := c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan})
	if err != nil {
		t.Fatalf("tokenize: %v", err)
	}
	token := tk.GetToken()
	if d, err := c.Tokens(t, 1).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: token}); err != nil || d.GetPan() != pan {
		t.Fatalf("detokenize: %v", err)
	}
	if _, err := c.Tokens(t, 1).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: unknownToken(t, 3)}); codeOf(err) != codes.NotFound {
		t.Fatalf("detokenize of an unknown token: %v", err)
	}
	if _, err := c.Signing(t, 1).Sign(ctx, &pb.SignRequest{Key: vault.DevKeySigning, Message: []byte("m")}); err != nil {
		t.Fatalf("sign: %v", err)
	}
	if _, err := c.Admin(t, 1).ListSchemes(ctx, &pb.ListSchemesRequest{}); err != nil {
		t.Fatalf("list schemes: %v", err)
	}

	// A key named with a date stamp is served and recorded (its digit run
	// masked like any PAN-like run in a log).
	if _, err := c.Admin(t, 1).CreateKey(ctx, &pb.CreateKeyRequest{Name: "sig-20261125-0001", Type: pb.KeyType_KEY_TYPE_ECDSA_P256,
		Purpose: pb.KeyPurpose_KEY_PURPOSE_SIGNING}); err != nil {
		t.Fatalf("create key: %v", err)
	}
	if _, err := c.Signing(t, 1).Sign(ctx, &pb.SignRequest{Key: "sig-20261125-0001", Message: []byte("m")}); err != nil {
		t.Fatalf("sign with a dated key name: %v", err)
	}

	raw, err := os.ReadFile(c.Nodes[1].AuditPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	if sum, err := audit.Verify(strings.NewReader(text)); err != nil || sum.Entries < 4 {
		t.Fatalf("audit log of n1: %d entries, %v", sum.Entries, err)
	}
	if strings.Contains(text, pan) || strings.Contains(text, token) {
		t.Fatalf("audit log holds a PAN or token in clear")
	}
	for _, want := range []string{
		`"method":"/panvault.v1.TokenService/Detokenize"`, `"code":"OK"`, `"code":"NOT_FOUND"`, `"reason":"TOKEN_NOT_FOUND"`,
		`"method":"/panvault.v1.SigningService/Sign"`, `"key":"` + vault.DevKeySigning + `"`,
		`"method":"/panvault.v1.AdminService/ListSchemes"`, `"masked":"` + token[:6], `"key":"sig-202*****0001"`,
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("audit log of n1 lacks %s", want)
		}
	}
	for i, nd := range c.Nodes {
		b, err := os.ReadFile(nd.AuditPath)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "TokenService/Tokenize\"") {
			t.Fatalf("n%d audited a tokenize", i)
		}
	}

	// The log refuses: the call fails and the PAN does not leave.
	if err := c.Nodes[2].Audit.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := c.Tokens(t, 2).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: token})
	if codeOf(err) != codes.Unavailable || reason(err) != "AUDIT_UNAVAILABLE" || d.GetPan() != "" {
		t.Fatalf("detokenize with the audit log closed: %v (pan returned: %v)", err, d.GetPan() != "")
	}
	if _, err := c.Signing(t, 2).Sign(ctx, &pb.SignRequest{Key: vault.DevKeySigning, Message: []byte("m")}); reason(err) != "AUDIT_UNAVAILABLE" {
		t.Fatalf("sign with the audit log closed: %v", err)
	}
	// Unaudited calls are still served.
	if _, err := c.Tokens(t, 2).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: pan}); err != nil {
		t.Fatalf("tokenize with the audit log closed: %v", err)
	}
}
