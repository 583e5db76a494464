package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// ageIdentity makes an identity file with `mk age-keygen` and returns its
// path and recipient.
func ageIdentity(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, name+".agekey")
	code, out, stderr := runCLI(t, "", "mk", "age-keygen", "--out", path)
	if code != 0 {
		t.Fatalf("age-keygen: %d %q", code, stderr)
	}
	rcpt := strings.TrimSpace(out)
	if !strings.HasPrefix(rcpt, "age1") {
		t.Fatalf("age-keygen printed %q", out)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", st, err)
	}
	return path, rcpt
}

// decryptFile decrypts an encrypted component file's armored part with the
// age library directly (as the age tool would after cutting the header).
func decryptFile(t *testing.T, path, identityFile string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte(armor.Header))
	if i < 0 {
		t.Fatalf("%s has no age armor", path)
	}
	idb, err := os.ReadFile(identityFile)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(idb))
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(raw[i:])), ids...)
	if err != nil {
		t.Fatalf("decrypt %s: %v", path, err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(plain)
}

var componentValueRE = regexp.MustCompile(`component = "([0-9a-f]{64})"`)

// Components encrypted to three custodians' age recipients: the KCVs are
// readable in each file's header, the component only after decryption with
// the right identity, and mk load decrypts, checks and loads them.
func TestMKComponentsAge(t *testing.T) {
	cfg := hsmConfigFile(t, "mk-age")
	keyDir := t.TempDir()
	aliceKey, alice := ageIdentity(t, keyDir, "alice")
	bobKey, bob := ageIdentity(t, keyDir, "bob")
	carolKey, carol := ageIdentity(t, keyDir, "carol")
	// Bob hands over his recipient as a file.
	bobRcpt := filepath.Join(keyDir, "bob.pub")
	if err := os.WriteFile(bobRcpt, []byte("# bob\n"+bob+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "mk")

	if code, _, stderr := runCLI(t, "", "mk", "components", "--config", cfg, "--count", "3", "--out", out,
		"--recipient", alice, "--recipient", bob); code != 2 || !strings.Contains(stderr, "one per component") {
		t.Fatalf("2 recipients for 3 components: %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", "mk", "components", "--config", cfg, "--out", out,
		"--recipient", alice, "--recipient", alice); code != 2 || !strings.Contains(stderr, "same recipient") {
		t.Fatalf("one recipient twice: %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", "mk", "components", "--config", cfg, "--out", out,
		"--recipient", alice, "--recipient", "age1notarecipient"); code != 2 {
		t.Fatalf("bad recipient: %d %q", code, stderr)
	}

	code, stdout, stderr := runCLI(t, "", "mk", "components", "--config", cfg, "--out", out, "-o", "json",
		"--recipient", alice, "--recipient", bobRcpt, "--recipient", carol)
	if code != 0 {
		t.Fatalf("components: %d %q", code, stderr)
	}
	var made struct {
		Components []componentJSON `json:"components"`
		MasterKCV  string          `json:"master_kcv"`
	}
	if err := json.Unmarshal([]byte(stdout), &made); err != nil || len(made.Components) != 3 {
		t.Fatalf("components json: %v %q", err, stdout)
	}
	idFiles := []string{aliceKey, bobKey, carolKey}
	rcpts := []string{alice, bob, carol}
	files := make([]string, 3)
	for i, c := range made.Components {
		files[i] = filepath.Join(out, "component-"+string(rune('1'+i))+".age")
		if c.File != files[i] || c.Recipient != rcpts[i] {
			t.Fatalf("component %d: %+v", i+1, c)
		}
		raw, err := os.ReadFile(files[i])
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := splitAgeComponent(files[i], raw)
		if err != nil {
			t.Fatal(err)
		}
		if h.Index != i+1 || h.Count != 3 || h.KCV.String() != c.KCV || h.MasterKCV.String() != made.MasterKCV || h.Recipient != rcpts[i] {
			t.Fatalf("header of %s: %+v", files[i], h)
		}
		plain := decryptFile(t, files[i], idFiles[i])
		m := componentValueRE.FindStringSubmatch(plain)
		if m == nil || !strings.Contains(plain, `kcv = "`+c.KCV+`"`) {
			t.Fatalf("decrypted component %d is not a component file", i+1)
		}
		if strings.Contains(string(raw), m[1]) || strings.Contains(stdout+stderr, m[1]) {
			t.Fatalf("component %d value in clear in its file or on the terminal", i+1)
		}
		if _, err := os.Stat(strings.TrimSuffix(files[i], ".age") + ".txt"); err == nil {
			t.Fatalf("a plaintext component file was written beside %s", files[i])
		}
	}

	args := []string{"mk", "load", "--config", cfg, "--component", files[0], "--component", files[1], "--component", files[2]}
	if code, _, stderr := runCLI(t, "", args...); code == 0 || !strings.Contains(stderr, "give the custodian's --identity") {
		t.Fatalf("load without identities: %d %q", code, stderr)
	}
	if code, _, stderr := runCLI(t, "", append(args, "--identity", aliceKey, "--identity", bobKey)...); code == 0 ||
		!strings.Contains(stderr, files[2]) || !strings.Contains(stderr, "none of the --identity files") {
		t.Fatalf("load without carol's identity: %d %q", code, stderr)
	}
	// A header that lies about the KCV is caught against the encrypted content.
	liar := filepath.Join(t.TempDir(), "liar.age")
	raw, _ := os.ReadFile(files[1])
	lied := strings.Replace(string(raw), `kcv = "`+made.Components[1].KCV+`"`, `kcv = "000000"`, 1)
	if lied == string(raw) {
		t.Fatal("test bug: header kcv not found")
	}
	if err := os.WriteFile(liar, []byte(lied), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "", "mk", "load", "--config", cfg, "--component", files[0], "--component", liar, "--component", files[2],
		"--identity", aliceKey, "--identity", bobKey, "--identity", carolKey); code == 0 || !strings.Contains(stderr, "disagrees") {
		t.Fatalf("load with a lying header: %d %q", code, stderr)
	}
	// A group-readable identity file is refused.
	loose := filepath.Join(keyDir, "loose.agekey")
	b, _ := os.ReadFile(aliceKey)
	if err := os.WriteFile(loose, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "", append(args, "--identity", loose)...); code != 2 || !strings.Contains(stderr, "must not be accessible") {
		t.Fatalf("loose identity: %d %q", code, stderr)
	}

	code, stdout, stderr = runCLI(t, "", append(args, "--identity", carolKey, "--identity", aliceKey, "--identity", bobKey)...)
	if code != 0 {
		t.Fatalf("load: %d %q", code, stderr)
	}
	for i, c := range made.Components {
		if !strings.Contains(stdout, "component "+string(rune('1'+i))+" of 3 ("+files[i]+", decrypted with age): KCV "+c.KCV) {
			t.Errorf("load output lacks component %d: %q", i+1, stdout)
		}
	}
	if !strings.Contains(stdout, "KCV "+made.MasterKCV+" (matches)") {
		t.Fatalf("load output: %q", stdout)
	}
}
