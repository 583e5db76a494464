package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/panvault/panvault/keys"
)

// Encrypted component files: the plaintext component file (mkfile.go)
// encrypted with age to one custodian's recipient, ASCII-armored, behind a
// public header that repeats what a custodian must be able to check without
// decrypting (which component, its KCV, the master key's KCV, to whom it
// is encrypted):
//
//	# comments
//	format = "panvault-mk-component-age-v1"
//	index = 2
//	count = 3
//	kcv = "E73DCD"
//	master_kcv = "780E20"
//	recipient = "age1..."
//	-----BEGIN AGE ENCRYPTED FILE-----
//	...
//	-----END AGE ENCRYPTED FILE-----
//
// The header is not authenticated; the encrypted plaintext is, so `mk
// load` trusts the plaintext and refuses a file whose header disagrees
// with it. The armored part is a standard age file: `sed -n '/^-----BEGIN
// AGE/,$p' FILE | age -d -i KEY` decrypts it with the age tool.
const componentAgeFormat = "panvault-mk-component-age-v1"

// maxComponentFileSize bounds a component file read (plain or encrypted).
const maxComponentFileSize = 64 << 10

// componentHeader is the public part of an encrypted component file.
type componentHeader struct {
	Index, Count   int
	KCV, MasterKCV keys.KCV
	Recipient      string
}

// parseRecipient parses an age recipient given on the command line: an
// "age1..." string, or a file holding exactly one (comments and blank lines
// allowed). X25519 and hybrid post-quantum (age1pq1...) recipients are
// accepted.
func parseRecipient(arg string) (age.Recipient, string, error) {
	s := strings.TrimSpace(arg)
	if !strings.HasPrefix(s, "age1") {
		b, err := os.ReadFile(arg)
		if err != nil {
			return nil, "", fmt.Errorf("--recipient %s: not an age recipient (age1...) and not a readable file: %w", arg, err)
		}
		s = ""
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if s != "" {
				return nil, "", fmt.Errorf("--recipient %s: holds more than one recipient; give one per component", arg)
			}
			s = line
		}
		if s == "" {
			return nil, "", fmt.Errorf("--recipient %s: no recipient in the file", arg)
		}
	}
	if strings.HasPrefix(s, "age1pq1") {
		r, err := age.ParseHybridRecipient(s)
		if err != nil {
			return nil, "", fmt.Errorf("--recipient %s: %w", arg, err)
		}
		return r, s, nil
	}
	r, err := age.ParseX25519Recipient(s)
	if err != nil {
		return nil, "", fmt.Errorf("--recipient %s: %w", arg, err)
	}
	return r, s, nil
}

// encryptComponent renders the encrypted file of one component. plain is
// the plaintext component file (the caller zeroes it).
func encryptComponent(h componentHeader, plain []byte, r age.Recipient) ([]byte, error) {
	var out bytes.Buffer
	fmt.Fprintf(&out, "# panvault master-key component %d of %d, encrypted with age to the custodian below.\n", h.Index, h.Count)
	fmt.Fprintf(&out, "# Check the KCVs with the ceremony record; load with: panvault mk load --component FILE --identity AGE-KEY-FILE ...\n")
	fmt.Fprintf(&out, "format = %q\nindex = %d\ncount = %d\nkcv = %q\nmaster_kcv = %q\nrecipient = %q\n",
		componentAgeFormat, h.Index, h.Count, h.KCV.String(), h.MasterKCV.String(), h.Recipient)
	aw := armor.NewWriter(&out)
	w, err := age.Encrypt(aw, r)
	if err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("age: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("age armor: %w", err)
	}
	return out.Bytes(), nil
}

// isAgeComponent reports whether raw is an encrypted component file.
func isAgeComponent(raw []byte) bool {
	return bytes.Contains(raw, []byte(armor.Header))
}

// splitAgeComponent parses the public header and returns the armored part.
func splitAgeComponent(path string, raw []byte) (componentHeader, []byte, error) {
	var h componentHeader
	i := bytes.Index(raw, []byte(armor.Header))
	if i < 0 || (i > 0 && raw[i-1] != '\n') {
		return h, nil, fmt.Errorf("%w %s: no age armor block", errComponentFile, path)
	}
	head, body := raw[:i], raw[i:]
	bad := func(line int, key, reason string) error {
		return fmt.Errorf("%w %s: line %d: %s: %s", errComponentFile, path, line, key, reason)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(head))
	ln := 0
	for sc.Scan() {
		ln++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return h, nil, bad(ln, "", "want key = value")
		}
		key, v := strings.TrimSpace(k), strings.TrimSpace(v)
		if seen[key] {
			return h, nil, bad(ln, key, "duplicate key")
		}
		seen[key] = true
		unq, qerr := strconv.Unquote(v)
		switch key {
		case "format":
			if qerr != nil || unq != componentAgeFormat {
				return h, nil, bad(ln, key, "unknown format (want "+componentAgeFormat+")")
			}
		case "index", "count":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > keys.MaxComponents {
				return h, nil, bad(ln, key, fmt.Sprintf("want a number from 1 to %d", keys.MaxComponents))
			}
			if key == "index" {
				h.Index = n
			} else {
				h.Count = n
			}
		case "kcv", "master_kcv":
			kcv, err := keys.ParseKCV(unq)
			if qerr != nil || err != nil {
				return h, nil, bad(ln, key, "want 6 quoted hex digits")
			}
			if key == "kcv" {
				h.KCV = kcv
			} else {
				h.MasterKCV = kcv
			}
		case "recipient":
			if qerr != nil || !strings.HasPrefix(unq, "age1") {
				return h, nil, bad(ln, key, "want a quoted age recipient")
			}
			h.Recipient = unq
		default:
			return h, nil, bad(ln, key, "unknown key")
		}
	}
	for _, k := range []string{"format", "index", "count", "kcv", "master_kcv", "recipient"} {
		if !seen[k] {
			return h, nil, bad(0, k, "missing")
		}
	}
	return h, body, nil
}

// readIdentities reads age identity files (AGE-SECRET-KEY-1... lines). A
// file must not be accessible by group or others.
func readIdentities(paths []string) ([]age.Identity, error) {
	var ids []age.Identity
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("--identity: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("--identity %s: permissions %v: must not be accessible by group or others", p, st.Mode().Perm())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("--identity: %w", err)
		}
		got, err := age.ParseIdentities(bytes.NewReader(b))
		clear(b)
		if err != nil {
			// age's parse errors do not quote the key; keep only ours anyway.
			return nil, fmt.Errorf("--identity %s: not an age identity file", p)
		}
		ids = append(ids, got...)
	}
	return ids, nil
}

// readComponentSet reads the component files of one master key (plain, or
// age-encrypted and decrypted with ids) and checks that they are all of its
// components, each once. It returns them in the order given and which were
// encrypted (by path); the caller zeroes them. On error the components read
// so far come back already zeroed.
func readComponentSet(files []string, ids []age.Identity) (parsed []*componentFile, encrypted map[string]bool, err error) {
	defer func() {
		if err != nil {
			for _, c := range parsed {
				c.Zero()
			}
		}
	}()
	encrypted = map[string]bool{}
	byIndex := map[int]string{}
	for _, f := range files {
		c, enc, err := readAnyComponentFile(f, ids)
		if err != nil {
			return parsed, nil, err
		}
		parsed = append(parsed, c)
		encrypted[c.Path] = enc
		if prev, dup := byIndex[c.Index]; dup {
			return parsed, nil, fmt.Errorf("%s and %s are both component %d", prev, f, c.Index)
		}
		byIndex[c.Index] = f
	}
	first := parsed[0]
	for _, c := range parsed {
		if c.Count != first.Count || c.MasterKCV != first.MasterKCV {
			return parsed, nil, fmt.Errorf("%s and %s belong to different ceremonies (count or master KCV differ)", first.Path, c.Path)
		}
	}
	if len(parsed) != first.Count {
		return parsed, nil, fmt.Errorf("%d component files given; the ceremony made %d", len(parsed), first.Count)
	}
	return parsed, encrypted, nil
}

// readAnyComponentFile reads a plaintext or an age-encrypted component
// file. An encrypted one is decrypted with ids, parsed, and its header
// checked against the authenticated plaintext.
func readAnyComponentFile(path string, ids []age.Identity) (c *componentFile, encrypted bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxComponentFileSize+1))
	defer clear(raw)
	if err != nil {
		return nil, false, err
	}
	if len(raw) > maxComponentFileSize {
		return nil, false, fmt.Errorf("%w %s: larger than %d bytes", errComponentFile, path, maxComponentFileSize)
	}
	if !isAgeComponent(raw) {
		c, err := readComponentFile(path)
		return c, false, err
	}
	h, body, err := splitAgeComponent(path, raw)
	if err != nil {
		return nil, true, err
	}
	if len(ids) == 0 {
		return nil, true, fmt.Errorf("%s is encrypted with age (to %s): give the custodian's --identity", path, h.Recipient)
	}
	r, err := age.Decrypt(armor.NewReader(bytes.NewReader(body)), ids...)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) {
			return nil, true, fmt.Errorf("%s is encrypted to %s: none of the --identity files can decrypt it", path, h.Recipient)
		}
		return nil, true, fmt.Errorf("%w %s: cannot decrypt: %w", errComponentFile, path, err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxComponentFileSize+1))
	defer clear(plain)
	if err != nil {
		return nil, true, fmt.Errorf("%w %s: decrypt: %w", errComponentFile, path, err)
	}
	c, err = parseComponent(path, plain)
	if err != nil {
		return nil, true, err
	}
	if c.Index != h.Index || c.Count != h.Count || c.KCV != h.KCV || c.MasterKCV != h.MasterKCV {
		c.Zero()
		return nil, true, fmt.Errorf("%w %s: the public header (component %d of %d, KCV %s, master KCV %s) disagrees with the encrypted component: do not use this file",
			errComponentFile, path, h.Index, h.Count, h.KCV, h.MasterKCV)
	}
	return c, true, nil
}

// generateAgeIdentity writes a new X25519 age identity to path (mode
// 0600, never overwriting) and returns its recipient.
func generateAgeIdentity(path string) (string, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", err
	}
	rcpt := id.Recipient().String()
	b := []byte("# panvault custodian age identity (SECRET): decrypts master-key components\n# public key: " + rcpt + "\n" + id.String() + "\n")
	defer clear(b)
	if err := writeNewFile(path, b, 0o600); err != nil {
		return "", err
	}
	return rcpt, nil
}
