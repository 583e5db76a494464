package vault_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/vaulttest"
)

// lockedBuffer collects log output from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsMaskPANs runs requests with debug logging on and checks that no
// PAN or token appears in clear, while masked forms do.
func TestLogsMaskPANs(t *testing.T) {
	var logs lockedBuffer
	c := vaulttest.StartClusterWith(t, 3, vaulttest.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	c.Setup(t)
	ctx := ctxT(t)
	pan := testPAN(t, "411111", 16, 55)
	secrets := []string{pan}
	for _, sch := range []string{vault.DevSchemeVaulted, vault.DevSchemeDeterministic, vault.DevSchemeFF1} {
		r, err := c.Tokens(t, 1).Tokenize(ctx, &pb.TokenizeRequest{Scheme: sch, Pan: pan, RequestId: "log-1"})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, r.GetToken())
		if _, err := c.Tokens(t, 2).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: sch, Token: r.GetToken()}); err != nil {
			t.Fatal(err)
		}
		if sch != vault.DevSchemeFF1 {
			if _, err := c.Tokens(t, 0).DeleteToken(ctx, &pb.DeleteTokenRequest{Scheme: sch, Token: r.GetToken()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Mistakes a client might make with a PAN.
	bad := pan[:15] + string('0'+(pan[15]-'0'+1)%10)
	secrets = append(secrets, bad)
	_, _ = c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: bad})
	_, _ = c.Tokens(t, 0).Tokenize(ctx, &pb.TokenizeRequest{Scheme: pan, Pan: pan})
	_, _ = c.Tokens(t, 0).Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: pan})
	_, _ = c.Tokens(t, 0).TokenizeBatch(ctx, &pb.TokenizeBatchRequest{Scheme: vault.DevSchemeVaulted,
		Items: []*pb.TokenizeBatchItem{{Pan: pan}, {Pan: bad}, {Pan: "x" + pan}}})

	out := logs.String()
	noSecret(t, "logs", out, secrets...)
	if !strings.Contains(out, masked(pan)) || !strings.Contains(out, "grpc call") || !strings.Contains(out, "identity=") {
		t.Fatalf("debug call lines with masked pans missing (%d bytes of logs)", len(out))
	}
}
