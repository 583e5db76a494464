package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/panvault/panvault/keys"
)

// Component files: one per custodian, mode 0600, a small strict key = value
// text format parsed here (not by a general TOML decoder) so that the secret
// hex digits pass through buffers this code zeroes:
//
//	# comments
//	format = "panvault-mk-component-v1"
//	index = 1
//	count = 3
//	kcv = "ABCDEF"          # this component's KCV
//	master_kcv = "123456"   # KCV of the master key all components make
//	component = "<64 hex digits>"
//
// A later issue wraps components for custodians with age; this format is the
// plaintext inside.
const componentFormat = "panvault-mk-component-v1"

// errComponentFile marks a malformed component file. Its messages name the
// file, line and key, never a value.
var errComponentFile = errors.New("component file")

// componentFile is a parsed component file. Value is secret: zero it with Zero.
type componentFile struct {
	Path      string
	Index     int
	Count     int
	KCV       keys.KCV
	MasterKCV keys.KCV
	Value     []byte
}

// Zero overwrites the component bytes.
func (c *componentFile) Zero() { clear(c.Value) }

// marshalComponent renders a component file. The caller zeroes the result.
func marshalComponent(index, count int, comp *keys.Component, master keys.KCV) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# panvault master-key component %d of %d. SECRET: for one custodian only.\n", index, count)
	fmt.Fprintf(&b, "# Load with: panvault mk load --config FILE --component FILE ... (all %d components).\n", count)
	fmt.Fprintf(&b, "format = %q\nindex = %d\ncount = %d\nkcv = %q\nmaster_kcv = %q\ncomponent = \"", componentFormat, index, count, comp.KCV().String(), master.String())
	h := make([]byte, hex.EncodedLen(len(comp.Bytes())))
	hex.Encode(h, comp.Bytes())
	b.Write(h)
	clear(h)
	b.WriteString("\"\n")
	out := bytes.Clone(b.Bytes())
	clear(b.Bytes()[:cap(b.Bytes())])
	return out
}

// readComponentFile reads and strictly parses path. The file must not be
// accessible by group or others.
func readComponentFile(path string) (*componentFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w %s: permissions %v: must not be accessible by group or others", errComponentFile, path, st.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	return parseComponent(path, raw)
}

func parseComponent(path string, raw []byte) (*componentFile, error) {
	c := &componentFile{Path: path}
	bad := func(line int, key, reason string) error {
		c.Zero()
		if key == "" {
			return fmt.Errorf("%w %s: line %d: %s", errComponentFile, path, line, reason)
		}
		return fmt.Errorf("%w %s: line %d: %s: %s", errComponentFile, path, line, key, reason)
	}
	seen := map[string]bool{}
	for n, line := range bytes.Split(raw, []byte("\n")) {
		ln := n + 1
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, v, ok := bytes.Cut(line, []byte("="))
		if !ok {
			return nil, bad(ln, "", "want key = value")
		}
		key := string(bytes.TrimSpace(k))
		v = bytes.TrimSpace(v)
		if seen[key] {
			return nil, bad(ln, key, "duplicate key")
		}
		seen[key] = true
		quoted := len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"'
		str := func() ([]byte, error) {
			if !quoted {
				return nil, bad(ln, key, "want a quoted string")
			}
			return v[1 : len(v)-1], nil
		}
		switch key {
		case "format":
			s, err := str()
			if err != nil {
				return nil, err
			}
			if string(s) != componentFormat {
				return nil, bad(ln, key, "unknown format (want "+componentFormat+")")
			}
		case "index", "count":
			i, err := strconv.Atoi(string(v))
			if err != nil || i < 1 || i > keys.MaxComponents {
				return nil, bad(ln, key, fmt.Sprintf("want a number from 1 to %d", keys.MaxComponents))
			}
			if key == "index" {
				c.Index = i
			} else {
				c.Count = i
			}
		case "kcv", "master_kcv":
			s, err := str()
			if err != nil {
				return nil, err
			}
			kcv, err := keys.ParseKCV(string(s))
			if err != nil {
				return nil, bad(ln, key, "want 6 hex digits")
			}
			if key == "kcv" {
				c.KCV = kcv
			} else {
				c.MasterKCV = kcv
			}
		case "component":
			s, err := str()
			if err != nil {
				return nil, err
			}
			if len(s) != hex.EncodedLen(keys.ComponentSize) {
				return nil, bad(ln, key, fmt.Sprintf("want %d hex digits", hex.EncodedLen(keys.ComponentSize)))
			}
			c.Value = make([]byte, keys.ComponentSize)
			if _, err := hex.Decode(c.Value, s); err != nil {
				return nil, bad(ln, key, "not hex")
			}
		default:
			return nil, bad(ln, key, "unknown key")
		}
	}
	for _, k := range []string{"format", "index", "count", "kcv", "master_kcv", "component"} {
		if !seen[k] {
			return nil, bad(0, k, "missing")
		}
	}
	if c.Index > c.Count {
		return nil, bad(0, "index", "greater than count")
	}
	return c, nil
}
