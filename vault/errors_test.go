package vault_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/pki"
	"github.com/panvault/panvault/vault/pki/pkitest"
	"github.com/panvault/panvault/vault/vaulttest"
)

// TestBadInput sends malformed requests through gRPC and checks the code,
// the field violations and that no message echoes the PAN.
func TestBadInput(t *testing.T) {
	c := devCluster(t)
	ctx := ctxT(t)
	if _, err := c.Admin(t, 0).CreateScheme(ctx, &pb.CreateSchemeRequest{Scheme: &pb.Scheme{
		Name: "only16", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, KeepLeading: 6, KeepTrailing: 4,
		Key: vault.DevKeyPAN, AllowedLengths: []uint32{16}}}); err != nil {
		t.Fatal(err)
	}
	tok := c.Tokens(t, 1)
	pan15 := testPAN(t, "378282", 15, 1)
	cases := []struct {
		name   string
		scheme string
		pan    string
		code   codes.Code
		reason string
		field  string
	}{
		{"empty", vault.DevSchemeVaulted, "", codes.InvalidArgument, "PAN_REQUIRED", "pan"},
		{"letters", vault.DevSchemeVaulted, "41111111111a1111", codes.InvalidArgument, "PAN_NOT_DIGITS", "pan"},
		{"spaces", vault.DevSchemeVaulted, "4111 1111 1111 1111", codes.InvalidArgument, "PAN_NOT_DIGITS", "pan"},
		{"dashes", vault.DevSchemeVaulted, "4111-1111-1111-1111", codes.InvalidArgument, "PAN_NOT_DIGITS", "pan"},
		{"fullwidth digits", vault.DevSchemeVaulted, "４１１１１１１１１１１１１１１１", codes.InvalidArgument, "PAN_NOT_DIGITS", "pan"},
		{"arabic-indic digits", vault.DevSchemeVaulted, "٤١١١١١١١١١١١١١١١", codes.InvalidArgument, "PAN_NOT_DIGITS", "pan"},
		{"11 digits", vault.DevSchemeVaulted, testPAN(t, "4", 11, 1), codes.InvalidArgument, "PAN_LENGTH", "pan"},
		{"20 digits", vault.DevSchemeVaulted, testPAN(t, "4", 20, 1), codes.InvalidArgument, "PAN_LENGTH", "pan"},
		{"luhn", vault.DevSchemeVaulted, "4111111111111112", codes.InvalidArgument, "INVALID_LUHN", "pan"},
		{"luhn ff1", vault.DevSchemeFF1, "4111111111111112", codes.InvalidArgument, "INVALID_LUHN", "pan"},
		{"length not allowed", "only16", pan15, codes.FailedPrecondition, "PAN_LENGTH_NOT_ALLOWED", ""},
		{"length not allowed ff1", vault.DevSchemeFF1, testPAN(t, "5018", 12, 2), codes.FailedPrecondition, "PAN_LENGTH_NOT_ALLOWED", ""},
		{"unknown scheme", "no-such-scheme", "4111111111111111", codes.NotFound, "SCHEME_NOT_FOUND", ""},
		{"malformed scheme name", "Pan!", "4111111111111111", codes.InvalidArgument, "", "scheme"},
		{"missing scheme", "", "4111111111111111", codes.InvalidArgument, "", "scheme"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tok.Tokenize(ctx, &pb.TokenizeRequest{Scheme: tc.scheme, Pan: tc.pan})
			wantCode(t, err, tc.code, tc.name)
			if tc.reason != "" && reason(err) != tc.reason {
				t.Fatalf("reason %q, want %q", reason(err), tc.reason)
			}
			vs := violations(err)
			if tc.field != "" && (len(vs) != 1 || vs[0].GetField() != tc.field || vs[0].GetDescription() == "") {
				t.Fatalf("field violations %v, want one for %s", vs, tc.field)
			}
			st, _ := status.FromError(err)
			noSecret(t, "status message", st.Message(), tc.pan, pan15)
			for _, d := range st.Details() {
				noSecret(t, "status detail", d.(interface{ String() string }).String(), tc.pan, pan15)
			}
		})
	}

	t.Run("tokens", func(t *testing.T) {
		_, err := tok.Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: unknownToken(t, 1)})
		wantCode(t, err, codes.NotFound, "unknown token")
		_, err = tok.Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: unknownToken(t, 1), Consistency: pb.Consistency_CONSISTENCY_STALE})
		wantCode(t, err, codes.NotFound, "unknown token, stale")
		_, err = tok.Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: "41111100000x1111"})
		wantCode(t, err, codes.InvalidArgument, "malformed token")
		if vs := violations(err); len(vs) != 1 || vs[0].GetField() != "token" {
			t.Fatalf("malformed token violations %v", vs)
		}
		_, err = tok.Detokenize(ctx, &pb.DetokenizeRequest{Scheme: vault.DevSchemeVaulted, Token: unknownToken(t, 1), Consistency: 9})
		wantCode(t, err, codes.InvalidArgument, "unknown consistency")
		_, err = tok.Detokenize(ctx, &pb.DetokenizeRequest{Scheme: "no-such-scheme", Token: unknownToken(t, 1)})
		wantCode(t, err, codes.NotFound, "detokenize in an unknown scheme")
	})

	t.Run("batches", func(t *testing.T) {
		items := make([]*pb.TokenizeBatchItem, vault.MaxBatchItems+1)
		for i := range items {
			items[i] = &pb.TokenizeBatchItem{Pan: "4111111111111111"}
		}
		_, err := tok.TokenizeBatch(ctx, &pb.TokenizeBatchRequest{Scheme: vault.DevSchemeVaulted, Items: items})
		wantCode(t, err, codes.InvalidArgument, "oversized batch")
		if st, _ := status.FromError(err); !strings.Contains(st.Message(), "oversized batch") || reason(err) != "OVERSIZED_BATCH" {
			t.Fatalf("oversized batch message %q reason %q", st.Message(), reason(err))
		}
		_, err = tok.TokenizeBatch(ctx, &pb.TokenizeBatchRequest{Scheme: vault.DevSchemeVaulted})
		wantCode(t, err, codes.InvalidArgument, "empty batch")
		dItems := make([]*pb.DetokenizeBatchItem, vault.MaxBatchItems+1)
		for i := range dItems {
			dItems[i] = &pb.DetokenizeBatchItem{Token: unknownToken(t, 1)}
		}
		_, err = tok.DetokenizeBatch(ctx, &pb.DetokenizeBatchRequest{Scheme: vault.DevSchemeVaulted, Items: dItems})
		wantCode(t, err, codes.InvalidArgument, "oversized detokenize batch")
	})

	t.Run("wire", func(t *testing.T) {
		// A PAN field that is not valid UTF-8 (sent as raw field 2): proto3
		// rejects it while unmarshalling, before the vault sees it.
		req := &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted}
		raw := protowire.AppendTag(nil, 2, protowire.BytesType)
		raw = protowire.AppendBytes(raw, []byte("4111\xff\xfe11111111111"))
		req.ProtoReflect().SetUnknown(raw)
		_, err := tok.Tokenize(ctx, req)
		wantCode(t, err, codes.Internal, "invalid utf-8 in pan")
		st, _ := status.FromError(err)
		noSecret(t, "utf-8 error", st.Message(), "4111\xff\xfe11111111111")

		// A field the server does not know (for example a CVV a newer
		// client might send): refused, not ignored.
		req = &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: "4111111111111111"}
		raw = protowire.AppendTag(nil, 99, protowire.BytesType)
		raw = protowire.AppendBytes(raw, []byte("123"))
		req.ProtoReflect().SetUnknown(raw)
		_, err = tok.Tokenize(ctx, req)
		wantCode(t, err, codes.InvalidArgument, "unknown field")
		// Inside a batch item too.
		item := &pb.TokenizeBatchItem{Pan: "4111111111111111"}
		item.ProtoReflect().SetUnknown(raw)
		_, err = tok.TokenizeBatch(ctx, &pb.TokenizeBatchRequest{Scheme: vault.DevSchemeVaulted, Items: []*pb.TokenizeBatchItem{item}})
		wantCode(t, err, codes.InvalidArgument, "unknown field in a batch item")
	})
}

// TestAccess checks authentication and the role table through gRPC.
func TestAccess(t *testing.T) {
	c := devCluster(t)
	ctx := ctxT(t)
	call := func(conf *tls.Config) error {
		cc, err := grpc.NewClient(c.Nodes[0].Addr, vault.ClientDialOptions(conf)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		_, err = pb.NewTokenServiceClient(cc).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: "4111111111111111"})
		return err
	}
	t.Run("NoClientCertificate", func(t *testing.T) {
		conf := pki.ClientConfig(tls.Certificate{}, c.CA.Pool())
		conf.Certificates = nil
		wantCode(t, call(conf), codes.Unavailable, "no client certificate")
	})
	t.Run("OtherCA", func(t *testing.T) {
		other := pkitest.NewCA(t)
		leaf, err := other.IssueClient(vaulttest.ClientName)
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, call(pki.ClientConfig(leaf.TLSCertificate(), c.CA.Pool())), codes.Unavailable, "certificate of another ca")
	})
	t.Run("UnknownIdentity", func(t *testing.T) {
		err := call(c.CA.Client("stranger"))
		wantCode(t, err, codes.PermissionDenied, "unknown identity")
	})
	t.Run("ClientCallsAdmin", func(t *testing.T) {
		_, err := pb.NewAdminServiceClient(c.ClientConn(t, 0)).ListKeys(ctx, &pb.ListKeysRequest{})
		wantCode(t, err, codes.PermissionDenied, "client role on AdminService")
		_, err = pb.NewClusterServiceClient(c.ClientConn(t, 0)).Status(ctx, &pb.StatusRequest{})
		wantCode(t, err, codes.PermissionDenied, "client role on ClusterService")
	})
	t.Run("AdminCallsEverything", func(t *testing.T) {
		if _, err := pb.NewTokenServiceClient(c.AdminConn(t, 0)).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: "4111111111111111"}); err != nil {
			t.Fatalf("admin tokenize: %v", err)
		}
		if _, err := pb.NewSigningServiceClient(c.AdminConn(t, 0)).GetPublicKey(ctx, &pb.GetPublicKeyRequest{Key: vault.DevKeySigning}); err != nil {
			t.Fatalf("admin get public key: %v", err)
		}
	})
	t.Run("NodeJoinsOnlyAsItself", func(t *testing.T) {
		_, nodeTLS := c.CA.Node("n1")
		cl := pb.NewClusterServiceClient(c.Conn(t, 0, nodeTLS))
		if _, err := cl.Status(ctx, &pb.StatusRequest{}); err != nil {
			t.Fatalf("node status: %v", err)
		}
		_, err := cl.Join(ctx, &pb.JoinRequest{NodeId: "n9", RaftAddress: "127.0.0.1:1"})
		wantCode(t, err, codes.PermissionDenied, "node joining another id")
		_, err = pb.NewTokenServiceClient(c.Conn(t, 0, nodeTLS)).Tokenize(ctx, &pb.TokenizeRequest{Scheme: vault.DevSchemeVaulted, Pan: "4111111111111111"})
		wantCode(t, err, codes.PermissionDenied, "node role on TokenService")
	})
}
