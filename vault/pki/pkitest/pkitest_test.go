package pkitest_test

import (
	"crypto/tls"
	"os"
	"testing"

	"github.com/panvault/panvault/vault/pki"
	"github.com/panvault/panvault/vault/pki/pkitest"
)

func TestConfigsFollowProductionPolicy(t *testing.T) {
	ca := pkitest.NewCA(t)
	server, client := ca.Node("n1")
	if server.MinVersion != tls.VersionTLS13 || server.ClientAuth != tls.RequireAndVerifyClientCert || server.ClientCAs == nil {
		t.Errorf("server config: MinVersion %#x, ClientAuth %v", server.MinVersion, server.ClientAuth)
	}
	for name, cfg := range map[string]*tls.Config{"node client": client, "client": ca.Client("payments"), "admin": ca.Admin("ops")} {
		if cfg.MinVersion != tls.VersionTLS13 || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.InsecureSkipVerify {
			t.Errorf("%s config does not follow pki.ClientConfig", name)
			continue
		}
		if id, err := pki.IdentityFromCert(cfg.Certificates[0].Leaf); err != nil || id == "" {
			t.Errorf("%s certificate names no identity: %v", name, err)
		}
	}
	if id, _ := pki.IdentityFromCert(ca.Admin("ops").Certificates[0].Leaf); id != pki.AdminIdentity("ops") {
		t.Errorf("admin identity %q", id)
	}
}

func TestWriteFilesLoad(t *testing.T) {
	ca := pkitest.NewCA(t)
	leaf, err := ca.IssueClient("payments")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := ca.WriteFiles(dir, "payments", leaf)
	cfg, err := pki.LoadClientTLS(f.Cert, f.Key, f.CA)
	if err != nil {
		t.Fatalf("written files do not load: %v", err)
	}
	if !cfg.Certificates[0].Leaf.Equal(leaf.Cert) || f.Identity != pki.ClientIdentity("payments") {
		t.Errorf("loaded another certificate, or identity %q", f.Identity)
	}
	fi, err := os.Stat(f.Key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %o, want 600", fi.Mode().Perm())
	}
}
