package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newDevCA(t *testing.T, dir string) *DevCA {
	t.Helper()
	d, err := NewDevCA(dir)
	if err != nil {
		t.Fatalf("NewDevCA: %v", err)
	}
	return d
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// loadLeaf loads issued files as LoadServerTLS would and returns the leaf.
func loadLeaf(t *testing.T, f CertFiles) *x509.Certificate {
	t.Helper()
	pair, err := loadKeyPair(f.Cert, f.Key, time.Now())
	if err != nil {
		t.Fatalf("load %s: %v", f.Cert, err)
	}
	return pair.Leaf
}

func TestDevCACreatesFilesWithPrivateModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	d := newDevCA(t, dir)
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("directory mode %o, want 700", got)
	}
	if got := mode(t, filepath.Join(dir, CAKeyFileName)); got != 0o600 {
		t.Errorf("ca key mode %o, want 600", got)
	}
	ca := d.CA().Certificate()
	if !ca.IsCA || ca.PublicKeyAlgorithm != x509.ECDSA || ca.NotAfter.Sub(ca.NotBefore) < 9*365*24*time.Hour {
		t.Errorf("ca certificate: IsCA %v, algorithm %v, validity %v", ca.IsCA, ca.PublicKeyAlgorithm, ca.NotAfter.Sub(ca.NotBefore))
	}

	issuers := map[string]func(string, ...string) (CertFiles, error){
		"node":   d.Node,
		"admin":  func(n string, _ ...string) (CertFiles, error) { return d.Admin(n) },
		"client": func(n string, _ ...string) (CertFiles, error) { return d.Client(n) },
	}
	wantEKU := map[string][]x509.ExtKeyUsage{
		"node":   {x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		"admin":  {x509.ExtKeyUsageClientAuth},
		"client": {x509.ExtKeyUsageClientAuth},
	}
	for kind, issue := range issuers {
		f, err := issue("x1")
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if want := filepath.Join(dir, kind+"-x1.crt"); f.Cert != want || f.CA != filepath.Join(dir, CACertFileName) {
			t.Errorf("%s: files %+v, want cert %s", kind, f, want)
		}
		if got := mode(t, f.Key); got != 0o600 {
			t.Errorf("%s: key mode %o, want 600", kind, got)
		}
		leaf := loadLeaf(t, f)
		if id, _ := IdentityFromCert(leaf); id != f.Identity || id != "spiffe://panvault.dev/"+kind+"/x1" {
			t.Errorf("%s: identity %q, files say %q", kind, id, f.Identity)
		}
		if !equalEKU(leaf.ExtKeyUsage, wantEKU[kind]) {
			t.Errorf("%s: extended key usages %v, want %v", kind, leaf.ExtKeyUsage, wantEKU[kind])
		}
		if leaf.IsCA {
			t.Errorf("%s: leaf is a CA", kind)
		}
		if _, err := LoadServerTLS(f.Cert, f.Key, f.CA); err != nil {
			t.Errorf("%s: files do not load: %v", kind, err)
		}
	}
	node := loadLeaf(t, CertFiles{Cert: filepath.Join(dir, "node-x1.crt"), Key: filepath.Join(dir, "node-x1.key")})
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := node.VerifyHostname(h); err != nil {
			t.Errorf("node certificate does not name %s: %v", h, err)
		}
	}
	// No stray temporary files are left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func equalEKU(got, want []x509.ExtKeyUsage) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestDevCAIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	first := newDevCA(t, dir)
	n1, err := first.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, certPEM := readFile(t, first.CAFile()), readFile(t, n1.Cert)

	again := newDevCA(t, dir)
	if !again.CA().Certificate().Equal(first.CA().Certificate()) || !bytes.Equal(readFile(t, again.CAFile()), caPEM) {
		t.Fatalf("second NewDevCA made a new CA instead of reusing the one in %s", dir)
	}
	n1again, err := again.Node("n1")
	if err != nil {
		t.Fatal(err)
	}
	if n1again != n1 || !bytes.Equal(readFile(t, n1.Cert), certPEM) {
		t.Errorf("node certificate reissued although the existing one fits")
	}

	// Asking for an extra host replaces the certificate; asking again without
	// it keeps the wider one.
	wide, err := again.Node("n1", "vault-1.internal", "10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	wideLeaf := loadLeaf(t, wide)
	if bytes.Equal(readFile(t, wide.Cert), certPEM) {
		t.Fatalf("certificate not reissued for new hosts")
	}
	for _, h := range []string{"vault-1.internal", "10.0.0.7", "localhost", "127.0.0.1", "::1"} {
		if err := wideLeaf.VerifyHostname(h); err != nil {
			t.Errorf("reissued certificate does not name %s: %v", h, err)
		}
	}
	if _, err := again.Node("n1"); err != nil {
		t.Fatal(err)
	}
	if !loadLeaf(t, wide).Equal(wideLeaf) {
		t.Errorf("certificate with more hosts than asked for was replaced")
	}
}

func TestDevCAReplacesUnfitCertificates(t *testing.T) {
	dir := t.TempDir()
	d := newDevCA(t, dir)
	f, err := d.Client("payments")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := leafTemplate(kindClient, "payments", nil)
	if err != nil {
		t.Fatal(err)
	}
	otherCA := newTestCA(t)
	expiring := *tmpl
	expiring.NotAfter = time.Now().Add(renewBefore - time.Hour)
	expired := *tmpl
	expired.NotBefore, expired.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	wrongName := *tmpl
	wrongName.URIs = []*url.URL{mustURL(t, ClientIdentity("someone-else"))}
	unfit := map[string]func() (*Leaf, error){
		"expires within renewal window": func() (*Leaf, error) { return d.ca.issue(&expiring, time.Now()) },
		"expired":                       func() (*Leaf, error) { return d.ca.issue(&expired, time.Now()) },
		"issued by another CA":          func() (*Leaf, error) { return otherCA.issue(tmpl, time.Now()) },
		"other identity":                func() (*Leaf, error) { return d.ca.issue(&wrongName, time.Now()) },
	}
	for name, mk := range unfit {
		bad, err := mk()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := os.WriteFile(f.Key, bad.KeyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.Cert, bad.CertPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Client("payments"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := loadLeaf(t, f)
		if got.Equal(bad.Cert) {
			t.Errorf("%s: certificate kept", name)
			continue
		}
		if _, err := got.Verify(x509.VerifyOptions{Roots: d.CA().Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: replacement does not verify: %v", name, err)
		}
		if id, _ := IdentityFromCert(got); id != ClientIdentity("payments") || got.NotAfter.Sub(time.Now()) < renewBefore {
			t.Errorf("%s: replacement names %q, expires %v", name, id, got.NotAfter)
		}
	}

	// A key that does not match its certificate is replaced too.
	stray, err := d.CA().IssueClient("payments")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Key, stray.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client("payments"); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClientTLS(f.Cert, f.Key, f.CA); err != nil {
		t.Errorf("mismatched key not replaced: %v", err)
	}
}

func TestDevCARefusesIncompleteOrInvalidCA(t *testing.T) {
	t.Run("key without certificate", func(t *testing.T) {
		dir := t.TempDir()
		d := newDevCA(t, dir)
		key := readFile(t, filepath.Join(dir, CAKeyFileName))
		if err := os.Remove(d.CAFile()); err != nil {
			t.Fatal(err)
		}
		if _, err := NewDevCA(dir); !errors.Is(err, ErrIncompleteCA) {
			t.Fatalf("NewDevCA = %v, want ErrIncompleteCA", err)
		}
		if !bytes.Equal(readFile(t, filepath.Join(dir, CAKeyFileName)), key) {
			t.Errorf("ca key was modified")
		}
		if _, err := os.Stat(d.CAFile()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a new ca certificate was written: %v", err)
		}
	})
	t.Run("certificate without key", func(t *testing.T) {
		dir := t.TempDir()
		newDevCA(t, dir)
		if err := os.Remove(filepath.Join(dir, CAKeyFileName)); err != nil {
			t.Fatal(err)
		}
		if _, err := NewDevCA(dir); !errors.Is(err, ErrIncompleteCA) {
			t.Fatalf("NewDevCA = %v, want ErrIncompleteCA", err)
		}
	})
	t.Run("leaf in place of the ca", func(t *testing.T) {
		dir := t.TempDir()
		d := newDevCA(t, dir)
		leaf, err := d.CA().IssueAdmin("ops")
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, CACertFileName, leaf.CertPEM)
		writeFile(t, dir, CAKeyFileName, leaf.KeyPEM)
		if _, err := NewDevCA(dir); !errors.Is(err, ErrBadCertificate) {
			t.Fatalf("NewDevCA = %v, want ErrBadCertificate", err)
		}
	})
}

func TestDevCAInvalidNames(t *testing.T) {
	d := newDevCA(t, t.TempDir())
	for _, name := range []string{"", "../escape", "a/b", "-leading-dash", ".hidden", "sp ace", strings.Repeat("x", 64), "ünïcode"} {
		if _, err := d.Client(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Client(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	for _, host := range []string{"bad_host", "-x.example", "*.example", "a..b", strings.Repeat("a", 64) + ".example"} {
		if _, err := d.Node("n1", host); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Node host %q = %v, want ErrInvalidName", host, err)
		}
	}
	if _, err := d.Node(strings.Repeat("x", 63)); err != nil {
		t.Errorf("63-character name refused: %v", err)
	}
}

// Several goroutines (standing in for several processes: each call opens its
// own lock file descriptor) opening one fresh directory must end up sharing one
// CA, and issuing one name concurrently must leave one consistent pair.
func TestDevCAConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	const workers = 8
	type result struct {
		ca    *DevCA
		files CertFiles
		err   error
	}
	results := make(chan result, workers)
	for range workers {
		go func() {
			d, err := NewDevCA(dir)
			if err != nil {
				results <- result{err: err}
				return
			}
			f, err := d.Client("shared")
			results <- result{ca: d, files: f, err: err}
		}()
	}
	var cas []*DevCA
	for range workers {
		r := <-results
		if r.err != nil {
			t.Fatalf("worker: %v", r.err)
		}
		cas = append(cas, r.ca)
	}
	for _, d := range cas[1:] {
		if !d.CA().Certificate().Equal(cas[0].CA().Certificate()) {
			t.Fatalf("concurrent NewDevCA created more than one CA")
		}
	}
	f, err := cas[0].Client("shared")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClientTLS(f.Cert, f.Key, f.CA); err != nil {
		t.Errorf("files after concurrent issuance: %v", err)
	}
}
