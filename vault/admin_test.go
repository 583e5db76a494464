package vault_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
)

func TestAdmin(t *testing.T) {
	c := devCluster(t)
	ctx := ctxT(t)
	admin := c.Admin(t, 2)

	t.Run("SchemeIdempotent", func(t *testing.T) {
		def := vault.DevSchemes()[0]
		r, err := admin.CreateScheme(ctx, &pb.CreateSchemeRequest{Scheme: def})
		if err != nil || r.GetCreated() {
			t.Fatalf("re-create identical scheme: created=%v err=%v", r.GetCreated(), err)
		}
		if r.GetScheme().GetLuhnRule() != pb.LuhnRule_LUHN_RULE_FAIL || len(r.GetScheme().GetAllowedLengths()) != 8 || r.GetScheme().GetCreateTime() == nil {
			t.Fatalf("stored scheme lacks its defaults: %v", r.GetScheme())
		}
		changed := proto.Clone(def).(*pb.Scheme)
		changed.LuhnRule = pb.LuhnRule_LUHN_RULE_PASS
		_, err = admin.CreateScheme(ctx, &pb.CreateSchemeRequest{Scheme: changed})
		wantCode(t, err, codes.AlreadyExists, "scheme with another definition")
		for i := range c.Nodes {
			g, err := c.Admin(t, i).GetScheme(ctx, &pb.GetSchemeRequest{Name: def.GetName()})
			if err != nil || g.GetScheme().GetKeepLeading() != 6 {
				t.Fatalf("get scheme on node %d: %v", i, err)
			}
		}
		_, err = admin.GetScheme(ctx, &pb.GetSchemeRequest{Name: "nope"})
		wantCode(t, err, codes.NotFound, "unknown scheme")
	})

	t.Run("SchemeValidation", func(t *testing.T) {
		cases := []struct {
			name   string
			scheme *pb.Scheme
			code   codes.Code
			field  string
		}{
			{"no mode", &pb.Scheme{Name: "x1", Key: vault.DevKeyPAN}, codes.InvalidArgument, "scheme.mode"},
			{"bad keep", &pb.Scheme{Name: "x2", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, KeepLeading: 5, Key: vault.DevKeyPAN}, codes.InvalidArgument, "scheme.keep_leading"},
			{"bad name", &pb.Scheme{Name: "Bad Name", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, Key: vault.DevKeyPAN}, codes.InvalidArgument, "scheme.name"},
			{"ff1 domain", &pb.Scheme{Name: "x3", Mode: pb.SchemeMode_SCHEME_MODE_FF1, KeepLeading: 6, KeepTrailing: 4, Key: vault.DevKeyFF1}, codes.InvalidArgument, "scheme.allowed_lengths"},
			{"det without fingerprint key", &pb.Scheme{Name: "x4", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, Deterministic: true, Key: vault.DevKeyPAN}, codes.InvalidArgument, "scheme.fingerprint_key"},
			{"unknown luhn rule", &pb.Scheme{Name: "x5", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, LuhnRule: 42, Key: vault.DevKeyPAN}, codes.InvalidArgument, "scheme.luhn_rule"},
			{"missing key", &pb.Scheme{Name: "x6", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, Key: "no-such-key"}, codes.FailedPrecondition, ""},
			{"wrong key purpose", &pb.Scheme{Name: "x7", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, Key: vault.DevKeyFF1}, codes.FailedPrecondition, ""},
			{"wrong fingerprint key", &pb.Scheme{Name: "x8", Mode: pb.SchemeMode_SCHEME_MODE_VAULTED, Deterministic: true, Key: vault.DevKeyPAN, FingerprintKey: vault.DevKeyPAN}, codes.FailedPrecondition, ""},
			{"ff1 with gcm key", &pb.Scheme{Name: "x9", Mode: pb.SchemeMode_SCHEME_MODE_FF1, KeepTrailing: 4, Key: vault.DevKeyPAN}, codes.FailedPrecondition, ""},
		}
		for _, tc := range cases {
			_, err := admin.CreateScheme(ctx, &pb.CreateSchemeRequest{Scheme: tc.scheme})
			wantCode(t, err, tc.code, tc.name)
			if tc.field == "" {
				continue
			}
			found := false
			for _, v := range violations(err) {
				found = found || v.GetField() == tc.field
			}
			if !found {
				t.Fatalf("%s: no violation of %s in %v", tc.name, tc.field, violations(err))
			}
		}
		_, err := admin.CreateScheme(ctx, &pb.CreateSchemeRequest{})
		wantCode(t, err, codes.InvalidArgument, "no scheme")
	})

	t.Run("ListSchemes", func(t *testing.T) {
		var names []string
		token := ""
		for {
			r, err := admin.ListSchemes(ctx, &pb.ListSchemesRequest{PageSize: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range r.GetSchemes() {
				names = append(names, s.GetName())
			}
			if token = r.GetNextPageToken(); token == "" {
				break
			}
		}
		if strings.Join(names, ",") != "pan,pan-det,pan-ff1" {
			t.Fatalf("schemes listed: %v", names)
		}
	})

	t.Run("Keys", func(t *testing.T) {
		r, err := admin.CreateKey(ctx, &pb.CreateKeyRequest{Name: vault.DevKeyPAN, Type: pb.KeyType_KEY_TYPE_AES256, Purpose: pb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION})
		if err != nil || r.GetCreated() {
			t.Fatalf("re-create identical key: created=%v err=%v", r.GetCreated(), err)
		}
		_, err = admin.CreateKey(ctx, &pb.CreateKeyRequest{Name: vault.DevKeyPAN, Type: pb.KeyType_KEY_TYPE_AES256, Purpose: pb.KeyPurpose_KEY_PURPOSE_FPE})
		wantCode(t, err, codes.AlreadyExists, "key with another purpose")
		_, err = admin.CreateKey(ctx, &pb.CreateKeyRequest{Name: "k1", Type: pb.KeyType_KEY_TYPE_ECDSA_P256, Purpose: pb.KeyPurpose_KEY_PURPOSE_FPE})
		wantCode(t, err, codes.InvalidArgument, "type and purpose that do not fit")
		_, err = admin.CreateKey(ctx, &pb.CreateKeyRequest{Name: "k1", Purpose: pb.KeyPurpose_KEY_PURPOSE_SIGNING})
		wantCode(t, err, codes.InvalidArgument, "no type")
		_, err = admin.CreateKey(ctx, &pb.CreateKeyRequest{Name: "-k", Type: pb.KeyType_KEY_TYPE_AES256, Purpose: pb.KeyPurpose_KEY_PURPOSE_FPE})
		wantCode(t, err, codes.InvalidArgument, "bad key name")

		g, err := c.Admin(t, 1).GetKey(ctx, &pb.GetKeyRequest{Name: vault.DevKeySigning})
		if err != nil {
			t.Fatal(err)
		}
		k := g.GetKey()
		if k.GetType() != pb.KeyType_KEY_TYPE_ECDSA_P256 || k.GetPurpose() != pb.KeyPurpose_KEY_PURPOSE_SIGNING ||
			k.GetLatestVersion() != 1 || k.GetMinDecryptionVersion() != 1 || len(k.GetVersions()) != 1 ||
			k.GetVersions()[0].GetState() != pb.KeyState_KEY_STATE_ACTIVE || len(k.GetVersions()[0].GetPublicKeyDer()) == 0 ||
			len(k.GetVersions()[0].GetMasterKeyKcv()) != 6 || k.GetVersions()[0].GetKcv() != "" {
			t.Fatalf("key info: %v", k)
		}
		// An AES key's version has its KCV, the same from every node.
		var kcv string
		for i := range c.Nodes {
			g, err := c.Admin(t, i).GetKey(ctx, &pb.GetKeyRequest{Name: vault.DevKeyPAN})
			if err != nil {
				t.Fatal(err)
			}
			got := g.GetKey().GetVersions()[0].GetKcv()
			if len(got) != 6 || strings.ToUpper(got) != got || i > 0 && got != kcv {
				t.Fatalf("node %d: %s v1 kcv %q (node 0: %q)", i, vault.DevKeyPAN, got, kcv)
			}
			kcv = got
		}
		_, err = admin.GetKey(ctx, &pb.GetKeyRequest{Name: "nope"})
		wantCode(t, err, codes.NotFound, "unknown key")
		l, err := admin.ListKeys(ctx, &pb.ListKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, k := range l.GetKeys() {
			names = append(names, k.GetName())
			if k.GetType() != pb.KeyType_KEY_TYPE_ECDSA_P256 && len(k.GetVersions()[0].GetPublicKeyDer()) != 0 {
				t.Fatalf("secret key %s lists a public key", k.GetName())
			}
		}
		if strings.Join(names, ",") != "pan-encryption,pan-fingerprint,pan-fpe,payments-p256" || l.GetNextPageToken() != "" {
			t.Fatalf("keys listed: %v", names)
		}
	})
}
