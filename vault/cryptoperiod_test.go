package vault_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/vaulttest"
)

// TestCryptoperiodElapsed creates a key with a one-hour cryptoperiod and
// moves the clock past it: GetKey reports the rotation as overdue, every
// node raises the gauge and logs one warning, and the key keeps working.
func TestCryptoperiodElapsed(t *testing.T) {
	var logs lockedBuffer
	c := vaulttest.StartClusterWith(t, 3, vaulttest.Options{
		Tune:   fastJobs,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	ctx := ctxT(t)
	admin := c.Admin(t, 0)
	k, err := admin.CreateKey(ctx, &pb.CreateKeyRequest{Name: "cp-gcm", Type: pb.KeyType_KEY_TYPE_AES256,
		Purpose: pb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION, Cryptoperiod: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	created := k.GetKey().GetVersions()[0].GetCreateTime().AsTime()
	if k.GetKey().GetRotationDueTime().AsTime() != created.Add(time.Hour) || k.GetKey().GetRotationOverdue() {
		t.Fatalf("new key: due %v (created %v), overdue %v", k.GetKey().GetRotationDueTime().AsTime(), created, k.GetKey().GetRotationOverdue())
	}
	if _, err := admin.CreateKey(ctx, &pb.CreateKeyRequest{Name: "cp-bad", Type: pb.KeyType_KEY_TYPE_AES256,
		Purpose: pb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION, Cryptoperiod: durationpb.New(-time.Hour)}); codeOf(err) != codes.InvalidArgument {
		t.Fatalf("negative cryptoperiod: %v", err)
	}
	if _, err := admin.CreateScheme(ctx, &pb.CreateSchemeRequest{Scheme: &pb.Scheme{Name: "cp", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED,
		KeepLeading: 6, KeepTrailing: 4, Key: "cp-gcm"}}); err != nil {
		t.Fatalf("create scheme: %v", err)
	}
	for _, nd := range c.Nodes {
		waitFor(t, nd.ID+" knows the key", func() bool { _, ok := nd.Vault.KeyMetrics().CryptoperiodElapsed["cp-gcm"]; return ok })
		if nd.Vault.KeyMetrics().CryptoperiodElapsed["cp-gcm"] {
			t.Fatalf("%s: cryptoperiod elapsed on a new key", nd.ID)
		}
	}

	c.Clock.Advance(2 * time.Hour)
	for _, nd := range c.Nodes {
		waitFor(t, nd.ID+" raises the gauge", func() bool { return nd.Vault.KeyMetrics().CryptoperiodElapsed["cp-gcm"] })
		if v, ok := gatherValue(t, nd.Vault, "panvault_key_cryptoperiod_elapsed", "key", "cp-gcm"); !ok || v != 1 {
			t.Fatalf("%s: panvault_key_cryptoperiod_elapsed{key=cp-gcm} = %v (present %v), want 1", nd.ID, v, ok)
		}
	}
	got, err := c.Admin(t, 2).GetKey(ctx, &pb.GetKeyRequest{Name: "cp-gcm"})
	if err != nil || !got.GetKey().GetRotationOverdue() {
		t.Fatalf("key after its cryptoperiod: %v %v", got, err)
	}
	// A warning, not an outage.
	pan := testPAN(t, "411111", 16, 77)
	r, err := c.Tokens(t, 1).Tokenize(ctx, &pb.TokenizeRequest{Scheme: "cp", Pan: pan})
	if err != nil {
		t.Fatalf("tokenize with an overdue key: %v", err)
	}
	if d, err := c.Tokens(t, 2).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: "cp", Token: r.GetToken()}); err != nil || d.GetPan() != pan {
		t.Fatalf("detokenize with an overdue key: %v", err)
	}
	// Several more checks on every node: still one warning per node.
	for _, nd := range c.Nodes {
		base := nd.Vault.KeyMetrics().CryptoperiodChecks
		waitFor(t, nd.ID+" checks three more times", func() bool { return nd.Vault.KeyMetrics().CryptoperiodChecks >= base+3 })
	}
	if n := strings.Count(logs.String(), "key cryptoperiod elapsed"); n != len(c.Nodes) {
		t.Fatalf("%d cryptoperiod warnings, want one per node (%d)", n, len(c.Nodes))
	}
}
