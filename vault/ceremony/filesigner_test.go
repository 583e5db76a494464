package ceremony_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/panvault/panvault/vault/ceremony"
)

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []ceremony.Algorithm{ceremony.AlgEd25519, ceremony.AlgECDSAP256} {
		t.Run(alg.String(), func(t *testing.T) {
			path := filepath.Join(dir, alg.String()+".pem")
			gen, err := ceremony.GenerateKeyFile(path, alg)
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("key file mode %v (%v), want 0600", st.Mode().Perm(), err)
			}
			loaded, err := ceremony.LoadKeyFile(path)
			if err != nil {
				t.Fatalf("LoadKeyFile: %v", err)
			}
			if loaded.Algorithm() != alg || loaded.Fingerprint() != gen.Fingerprint() || string(loaded.PublicKeyDER()) != string(gen.PublicKeyDER()) {
				t.Fatalf("loaded key differs from generated")
			}
			// The loaded key signs what the registry verifies.
			c, err := ceremony.SignAcknowledgement(loaded, "dev-"+strings.ReplaceAll(alg.String(), "ecdsa-", ""), t0)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.VerifyAcknowledgement(); err != nil {
				t.Fatal(err)
			}
			if _, err := ceremony.GenerateKeyFile(path, alg); !errors.Is(err, ceremony.ErrKeyFile) || !errors.Is(err, os.ErrExist) {
				t.Fatalf("overwrite: %v", err)
			}
		})
	}
	again := filepath.Join(dir, "dev.pem")
	first, created, err := ceremony.LoadOrGenerateKeyFile(again, ceremony.AlgEd25519)
	if err != nil || !created {
		t.Fatalf("first LoadOrGenerateKeyFile: created %v, %v", created, err)
	}
	second, created, err := ceremony.LoadOrGenerateKeyFile(again, ceremony.AlgECDSAP256)
	if err != nil || created || second.Fingerprint() != first.Fingerprint() {
		t.Fatalf("second LoadOrGenerateKeyFile: created %v, same key %v, %v", created, second != nil && second.Fingerprint() == first.Fingerprint(), err)
	}
	if err := os.Chmod(again, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ceremony.LoadOrGenerateKeyFile(again, ceremony.AlgEd25519); !errors.Is(err, ceremony.ErrKeyFile) {
		t.Fatalf("unsafe existing file: %v", err)
	}
	if _, err := ceremony.GenerateKeyFile(filepath.Join(dir, "x.pem"), 0); !errors.Is(err, ceremony.ErrUnsupportedKey) {
		t.Errorf("unknown algorithm: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was left for an unknown algorithm")
	}
}

func TestKeyFileRefusals(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.pem")
	if _, err := ceremony.GenerateKeyFile(good, ceremony.AlgEd25519); err != nil {
		t.Fatal(err)
	}
	pemText, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	p384PEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384DER})
	withHeader := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}})
	block, _ := pem.Decode(pemText)
	garbled := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: append([]byte{0x30, 0x03}, block.Bytes[2:]...)})
	broken := "-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n"

	cases := map[string]struct {
		content []byte
		mode    os.FileMode
		want    error
	}{
		"group readable":    {pemText, 0o640, ceremony.ErrKeyFile},
		"world readable":    {pemText, 0o604, ceremony.ErrKeyFile},
		"empty":             {nil, 0o600, ceremony.ErrKeyFile},
		"two blocks":        {append(append([]byte(nil), pemText...), pemText...), 0o600, ceremony.ErrKeyFile},
		"trailing text":     {append(append([]byte(nil), pemText...), "junk\n"...), 0o600, ceremony.ErrKeyFile},
		"leading text":      {append([]byte("junk\n"), pemText...), 0o600, ceremony.ErrKeyFile},
		"broken then good":  {append([]byte(broken), pemText...), 0o600, ceremony.ErrKeyFile},
		"wrong block type":  {ecPEM, 0o600, ceremony.ErrKeyFile},
		"pem headers":       {withHeader, 0o600, ceremony.ErrKeyFile},
		"not pkcs8":         {garbled, 0o600, ceremony.ErrKeyFile},
		"p-384 key":         {p384PEM, 0o600, ceremony.ErrUnsupportedKey},
		"larger than 16KiB": {append(append([]byte(nil), pemText...), make([]byte, 17<<10)...), 0o600, ceremony.ErrKeyFile},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			if err := os.WriteFile(path, c.content, c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, c.mode); err != nil { // umask-proof
				t.Fatal(err)
			}
			_, err := ceremony.LoadKeyFile(path)
			if !errors.Is(err, c.want) {
				t.Fatalf("LoadKeyFile = %v, want %v", err, c.want)
			}
			// No part of the key's encoding leaks into the message.
			if b64 := strings.Split(string(pemText), "\n")[1]; strings.Contains(err.Error(), b64[:16]) {
				t.Fatalf("error contains key material: %v", err)
			}
		})
	}
	if _, err := ceremony.LoadKeyFile(dir); !errors.Is(err, ceremony.ErrKeyFile) {
		t.Errorf("directory: %v", err)
	}
	if _, err := ceremony.LoadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, ceremony.ErrKeyFile) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestFileSignerConcurrentUse(t *testing.T) {
	s, err := ceremony.GenerateKeyFile(filepath.Join(t.TempDir(), "k.pem"), ceremony.AlgECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	p := goldenProposals(t)["rotate-key"]
	const workers = 8
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			a, err := ceremony.SignApproval(s, "", p)
			if err == nil && a.Key != s.Fingerprint() {
				err = errors.New("approval names another key")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
