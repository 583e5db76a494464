package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names in a dev CA directory. Issued certificates are named
// <kind>-<name>.crt and <kind>-<name>.key, kind being node, admin or client.
const (
	// CACertFileName is the CA certificate (PEM), the file to pass as the CA
	// file to LoadServerTLS and LoadClientTLS.
	CACertFileName = "ca.crt"
	// CAKeyFileName is the CA private key (PEM, PKCS #8, mode 0600).
	CAKeyFileName = "ca.key"
	lockFileName  = ".lock"
	// renewBefore is how close to expiry an existing certificate is replaced.
	renewBefore = 30 * 24 * time.Hour
)

// CertFiles names the files of one issued certificate, ready for
// LoadServerTLS(Cert, Key, CA) or LoadClientTLS(Cert, Key, CA).
type CertFiles struct {
	// Cert is the certificate file (PEM).
	Cert string
	// Key is the private key file (PEM, PKCS #8, mode 0600).
	Key string
	// CA is the CA certificate file (PEM).
	CA string
	// Identity is the identity the certificate names (its URI SAN).
	Identity string
}

// DevCA is a CA kept in a directory of PEM files, for `panvault dev` and local
// clusters. NewDevCA reuses the CA already in the directory, and Node, Admin
// and Client reuse a certificate already issued when it still fits (same CA,
// identity and hosts, more than 30 days of validity left), so that restarting a
// dev cluster keeps its certificates. Private keys are written with mode 0600,
// the directory is created with mode 0700, and files are replaced atomically.
//
// A DevCA is safe for concurrent use, also by several processes on one
// directory (on Unix: writes are serialised with flock on a lock file).
type DevCA struct {
	dir string
	ca  *CA
}

// NewDevCA opens the CA in dir, creating dir and a new CA (ECDSA P-256, valid
// for CAValidity) when dir holds neither ca.crt nor ca.key. When it holds only
// one of them it fails with ErrIncompleteCA rather than replace anything; an
// existing CA that is invalid (expired, key mismatch, not a CA) is an error
// too: remove the directory to start over.
func NewDevCA(dir string) (*DevCA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: dev ca directory: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	certPath, keyPath := filepath.Join(dir, CACertFileName), filepath.Join(dir, CAKeyFileName)
	haveCert, err := fileExists(certPath)
	if err != nil {
		return nil, err
	}
	haveKey, err := fileExists(keyPath)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var ca *CA
	switch {
	case haveCert && haveKey:
		ca, err = loadCA(certPath, keyPath, now)
	case !haveCert && !haveKey:
		ca, err = createCAFiles(certPath, keyPath, now)
	default:
		err = fmt.Errorf("pki: dev ca in %q: %w", dir, ErrIncompleteCA)
	}
	if err != nil {
		return nil, err
	}
	return &DevCA{dir: dir, ca: ca}, nil
}

// loadCA loads a CA certificate and key and checks that they form a usable CA.
func loadCA(certPath, keyPath string, now time.Time) (*CA, error) {
	pair, err := loadKeyPair(certPath, keyPath, now)
	if err != nil {
		return nil, err
	}
	cert := pair.Leaf
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("pki: ca certificate file %q: not a ca certificate: %w", certPath, ErrBadCertificate)
	}
	return &CA{cert: cert, certPEM: pemCert(cert.Raw), key: pair.PrivateKey.(crypto.Signer)}, nil
}

// createCAFiles creates a CA and writes it: the key first, so that a crash in
// between leaves a key without a certificate (ErrIncompleteCA on the next
// start), never a certificate whose key is lost.
func createCAFiles(certPath, keyPath string, now time.Time) (*CA, error) {
	ca, err := newCA(now)
	if err != nil {
		return nil, err
	}
	keyPEM, err := ca.keyPEM()
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, ca.certPEM, 0o644); err != nil {
		return nil, err
	}
	return ca, nil
}

// CA returns the in-memory CA, for issuing certificates that are not written
// to the directory.
func (d *DevCA) CA() *CA { return d.ca }

// Dir returns the directory the CA lives in.
func (d *DevCA) Dir() string { return d.dir }

// CAFile returns the path of the CA certificate file.
func (d *DevCA) CAFile() string { return filepath.Join(d.dir, CACertFileName) }

// Node returns the files of node id's certificate (see CA.IssueNode for what
// it holds), issuing it unless a fitting one exists. Extra hosts are added to
// localhost, 127.0.0.1 and ::1; an existing certificate lacking one of them is
// replaced.
func (d *DevCA) Node(id string, hosts ...string) (CertFiles, error) {
	return d.ensure(kindNode, id, hosts)
}

// Admin returns the files of administrator name's certificate, issuing it
// unless a fitting one exists.
func (d *DevCA) Admin(name string) (CertFiles, error) {
	return d.ensure(kindAdmin, name, nil)
}

// Client returns the files of client name's certificate, issuing it unless a
// fitting one exists.
func (d *DevCA) Client(name string) (CertFiles, error) {
	return d.ensure(kindClient, name, nil)
}

func (d *DevCA) ensure(kind, name string, hosts []string) (CertFiles, error) {
	tmpl, err := leafTemplate(kind, name, hosts)
	if err != nil {
		return CertFiles{}, err
	}
	base := filepath.Join(d.dir, kind+"-"+name)
	files := CertFiles{Cert: base + ".crt", Key: base + ".key", CA: d.CAFile(), Identity: devIdentity(kind, name)}

	unlock, err := lockDir(d.dir)
	if err != nil {
		return CertFiles{}, err
	}
	defer unlock()
	now := time.Now()
	if d.fits(files, tmpl, now) {
		return files, nil
	}
	leaf, err := d.ca.issue(tmpl, now)
	if err != nil {
		return CertFiles{}, err
	}
	// Key first: a reader that sees the new key with the old certificate gets
	// ErrKeyMismatch, and the next ensure replaces both.
	if err := writeFileAtomic(files.Key, leaf.KeyPEM, 0o600); err != nil {
		return CertFiles{}, err
	}
	if err := writeFileAtomic(files.Cert, leaf.CertPEM, 0o644); err != nil {
		return CertFiles{}, err
	}
	return files, nil
}

// fits reports whether the certificate in files can be kept: it loads with its
// key, was issued by this CA for the same identity and usages, names every host
// asked for, and stays valid for more than renewBefore. Any failure means
// "issue a new one", so the error itself does not matter.
func (d *DevCA) fits(files CertFiles, tmpl *x509.Certificate, now time.Time) bool {
	pair, err := loadKeyPair(files.Cert, files.Key, now)
	if err != nil {
		return false
	}
	leaf := pair.Leaf
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:       d.ca.Pool(),
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return false
	}
	if id, err := IdentityFromCert(leaf); err != nil || id != tmpl.URIs[0].String() {
		return false
	}
	for _, u := range tmpl.ExtKeyUsage {
		if !slices.Contains(leaf.ExtKeyUsage, u) {
			return false
		}
	}
	for _, n := range tmpl.DNSNames {
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	for _, ip := range tmpl.IPAddresses {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	return leaf.NotAfter.Sub(now) > renewBefore
}

// keyPEM returns the CA key, PEM encoded as PKCS #8.
func (c *CA) keyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode ca key: %w", err)
	}
	return pemBlock("PRIVATE KEY", der), nil
}

func fileExists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("pki: %w", err)
	}
}

// writeFileAtomic writes data to a temporary file in path's directory with
// mode perm, syncs it and renames it over path, so that readers see the old
// file or the new one, never a partial one.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("pki: write %q: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("pki: write %q: %w", path, err)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
