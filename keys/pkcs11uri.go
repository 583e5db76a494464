package keys

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// ErrPKCS11URI: a PKCS#11 URI is malformed, uses an attribute this package
// does not support, or carries its PIN in the URI itself.
var ErrPKCS11URI = errors.New("keys: invalid pkcs11 uri")

// maxPINFileSize bounds a PIN file read.
const maxPINFileSize = 1024

// PKCS11URI names a key in a token by the subset of RFC 7512 that a
// custodian needs:
//
//	pkcs11:token=LABEL;object=KEYLABEL[;type=private]?pin-source=file:/path/to/pin[&module-path=/path/lib.so]
//
// token and object are required and found by label (slot numbers are not
// stable). pin-source names a file holding the user PIN (mode 0600 or
// stricter); a PIN written into the URI (pin-value) is refused, because a
// URI ends up in shell history, process listings and logs. Values are
// percent-decoded. Unknown or repeated attributes are refused rather than
// ignored: a URI that names something this package would not match is an
// error, not a different key. A plain value, safe for concurrent use.
type PKCS11URI struct {
	Token      string // token label
	Object     string // CKA_LABEL of the key
	PINSource  string // path of the PIN file; empty if none was given
	ModulePath string // PKCS#11 library; empty means the caller's default
}

// IsPKCS11URI reports whether s is meant as a PKCS#11 URI (starts with
// "pkcs11:"), as opposed to a file path.
func IsPKCS11URI(s string) bool { return strings.HasPrefix(strings.ToLower(s), "pkcs11:") }

// ParsePKCS11URI parses s. Errors wrap ErrPKCS11URI, name the attribute and
// never repeat a pin-value.
func ParsePKCS11URI(s string) (PKCS11URI, error) {
	var u PKCS11URI
	if !IsPKCS11URI(s) {
		return u, fmt.Errorf("%w: must start with \"pkcs11:\"", ErrPKCS11URI)
	}
	rest := s[len("pkcs11:"):]
	path, query, _ := strings.Cut(rest, "?")
	seen := map[string]bool{}
	attrs := func(part, sep string, set func(name, value string) error) error {
		if part == "" {
			return nil
		}
		for _, kv := range strings.Split(part, sep) {
			name, raw, ok := strings.Cut(kv, "=")
			if !ok || name == "" {
				return fmt.Errorf("%w: %q: want name=value", ErrPKCS11URI, truncate(kv))
			}
			name = strings.ToLower(name)
			if seen[name] {
				return fmt.Errorf("%w: %s given twice", ErrPKCS11URI, name)
			}
			seen[name] = true
			if name == "pin-value" {
				return fmt.Errorf("%w: pin-value is refused (the PIN would be in shell history and process lists): put the PIN in a file readable only by you and use pin-source=file:/path", ErrPKCS11URI)
			}
			v, err := url.PathUnescape(raw)
			if err != nil {
				return fmt.Errorf("%w: %s: bad percent-encoding", ErrPKCS11URI, name)
			}
			if err := set(name, v); err != nil {
				return err
			}
		}
		return nil
	}
	err := attrs(path, ";", func(name, v string) error {
		switch name {
		case "token":
			u.Token = v
		case "object":
			u.Object = v
		case "type":
			if v != "private" {
				return fmt.Errorf("%w: type=%s: only type=private (the signing key) is supported", ErrPKCS11URI, truncate(v))
			}
		default:
			return fmt.Errorf("%w: path attribute %q is not supported (use token= and object=)", ErrPKCS11URI, truncate(name))
		}
		return nil
	})
	if err != nil {
		return PKCS11URI{}, err
	}
	err = attrs(query, "&", func(name, v string) error {
		switch name {
		case "pin-source":
			p, err := pinSourcePath(v)
			if err != nil {
				return err
			}
			u.PINSource = p
		case "module-path":
			if !filepath.IsAbs(v) {
				return fmt.Errorf("%w: module-path must be an absolute path", ErrPKCS11URI)
			}
			u.ModulePath = v
		default:
			return fmt.Errorf("%w: query attribute %q is not supported (use pin-source= and module-path=)", ErrPKCS11URI, truncate(name))
		}
		return nil
	})
	if err != nil {
		return PKCS11URI{}, err
	}
	if err := validTokenLabel(u.Token); err != nil {
		return PKCS11URI{}, fmt.Errorf("%w: token: %w", ErrPKCS11URI, err)
	}
	if err := validObjectLabel(u.Object); err != nil {
		return PKCS11URI{}, fmt.Errorf("%w: object: %w", ErrPKCS11URI, err)
	}
	return u, nil
}

// pinSourcePath accepts "file:/abs", "file:///abs" and "/abs".
func pinSourcePath(v string) (string, error) {
	p := v
	switch {
	case strings.HasPrefix(v, "file://"):
		p = strings.TrimPrefix(v, "file://")
	case strings.HasPrefix(v, "file:"):
		p = strings.TrimPrefix(v, "file:")
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%w: pin-source must be file:/absolute/path", ErrPKCS11URI)
	}
	return filepath.Clean(p), nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// validObjectLabel checks a key label: 1..128 printable bytes.
func validObjectLabel(label string) error {
	if label == "" || len(label) > 128 {
		return fmt.Errorf("%w: key label must be 1..128 bytes", ErrInvalidInput)
	}
	for i := 0; i < len(label); i++ {
		if label[i] < 0x20 || label[i] == 0x7f {
			return fmt.Errorf("%w: key label contains a control character", ErrInvalidInput)
		}
	}
	return nil
}

// String returns the URI in canonical form (attribute order fixed, values
// percent-encoded where needed).
func (u PKCS11URI) String() string {
	var b strings.Builder
	b.WriteString("pkcs11:token=")
	b.WriteString(escapeAttr(u.Token))
	b.WriteString(";object=")
	b.WriteString(escapeAttr(u.Object))
	sep := "?"
	if u.PINSource != "" {
		b.WriteString(sep + "pin-source=file:" + escapeAttr(u.PINSource))
		sep = "&"
	}
	if u.ModulePath != "" {
		b.WriteString(sep + "module-path=" + escapeAttr(u.ModulePath))
	}
	return b.String()
}

// escapeAttr percent-encodes everything but RFC 3986 unreserved characters
// and '/' (which RFC 7512 allows unescaped in values).
func escapeAttr(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '/':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// Config returns the keys.Config that opens the URI's token: the library is
// the URI's module-path, else defaultLib; the PIN is read from pin-source
// (ReadPINFile). Errors never contain the PIN.
func (u PKCS11URI) Config(defaultLib string) (Config, error) {
	lib := u.ModulePath
	if lib == "" {
		lib = defaultLib
	}
	if lib == "" {
		return Config{}, fmt.Errorf("%w: no module-path in the URI and no default PKCS#11 library", ErrPKCS11URI)
	}
	if u.PINSource == "" {
		return Config{}, fmt.Errorf("%w: no pin-source: add ?pin-source=file:/path/to/pin", ErrPKCS11URI)
	}
	pin, err := ReadPINFile(u.PINSource)
	if err != nil {
		return Config{}, err
	}
	return Config{Lib: lib, TokenLabel: u.Token, PIN: pin}, nil
}

// ReadPINFile reads a PIN from path: a regular file not accessible by group
// or others, at most 1 KiB, trailing newlines trimmed, not empty. Errors
// wrap ErrInvalidInput (or the os error) and never contain the PIN.
func ReadPINFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("pin file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("pin file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%w: pin file %s is not a regular file", ErrInvalidInput, path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%w: pin file %s has permissions %v: must not be accessible by group or others", ErrInvalidInput, path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPINFileSize+1))
	defer clear(b)
	if err != nil {
		return "", fmt.Errorf("pin file %s: %w", path, err)
	}
	if len(b) > maxPINFileSize {
		return "", fmt.Errorf("%w: pin file %s is larger than %d bytes", ErrInvalidInput, path, maxPINFileSize)
	}
	pin := strings.TrimRight(string(b), "\r\n")
	if pin == "" {
		return "", fmt.Errorf("%w: pin file %s is empty", ErrInvalidInput, path)
	}
	return pin, nil
}
