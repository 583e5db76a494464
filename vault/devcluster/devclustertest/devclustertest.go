// Package devclustertest holds helpers for end-to-end tests that run the real
// panvault binary: building it, requiring SoftHSM, generating test PANs
// deterministically, masking them for failure messages, and scanning files for
// PANs that must never be written in clear. It exists so that the end-to-end
// tests of several packages (cmd/panvault, vault/devcluster) share one PAN
// generator and one scanner. Every function is safe for concurrent use.
package devclustertest

import (
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/panvault/panvault/softhsm/softhsmtest"
	"github.com/panvault/panvault/vault/card"
)

// RequireSoftHSM skips the test when SoftHSM's library is missing, or fails it
// under CI=true (CI must never pass by skipping the HSM tests).
func RequireSoftHSM(t testing.TB) {
	t.Helper()
	softhsmtest.Require(t)
}

var build struct {
	mu   sync.Mutex
	path string
}

// BuildBinary builds ./cmd/panvault once per test process (with `go build`)
// into a temporary directory and returns the executable's path.
func BuildBinary(t testing.TB) string {
	t.Helper()
	build.mu.Lock()
	defer build.mu.Unlock()
	if build.path != "" {
		return build.path
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	dir, err := os.MkdirTemp("", "panvault-bin-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "panvault")
	cmd := exec.Command(goBin, "build", "-o", out, "github.com/panvault/panvault/cmd/panvault")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/panvault: %v\n%s", err, b)
	}
	build.path = out
	return out
}

// Logger returns a slog logger writing to t.Log and, when file is not nil,
// to file as well.
func Logger(t testing.TB, file io.Writer) *slog.Logger {
	w := io.Writer(tlogWriter{t})
	if file != nil {
		w = io.MultiWriter(w, file)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// brandSpec is an IIN prefix and a PAN length.
type brandSpec struct {
	prefix string
	length int
	brand  card.Brand
}

// specs cover every brand the validator knows, at several lengths (14 to 19;
// 12- and 13-digit PANs are left out: a vaulted 6+4 token of them has only one
// or two random digits).
var specs = []brandSpec{
	{"4", 16, card.BrandVisa}, {"4", 19, card.BrandVisa},
	{"51", 16, card.BrandMastercard}, {"55", 16, card.BrandMastercard}, {"2221", 16, card.BrandMastercard}, {"2720", 16, card.BrandMastercard},
	{"34", 15, card.BrandAmex}, {"37", 15, card.BrandAmex},
	{"6011", 16, card.BrandDiscover}, {"65", 16, card.BrandDiscover},
	{"3528", 16, card.BrandJCB}, {"3589", 16, card.BrandJCB},
	{"36", 14, card.BrandDiners}, {"300", 14, card.BrandDiners},
	{"62", 16, card.BrandUnionPay}, {"62", 19, card.BrandUnionPay},
	{"6759", 16, card.BrandMaestro}, {"5018", 18, card.BrandMaestro},
	{"2200", 16, card.BrandMir}, {"2204", 16, card.BrandMir},
}

// PANs returns n distinct Luhn-valid PANs of varied brands and lengths,
// the same for the same seed. Each is checked with card.Parse and its brand
// with card.DetectBrand; a mismatch panics (a broken generator, not a test
// outcome).
func PANs(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	seen := make(map[string]bool, n)
	out := make([]string, 0, n)
	for len(out) < n {
		s := specs[len(out)%len(specs)]
		b := make([]byte, 0, s.length)
		b = append(b, s.prefix...)
		for len(b) < s.length-1 {
			b = append(b, byte('0'+r.IntN(10)))
		}
		d, err := card.LuhnCheckDigit(b)
		if err != nil {
			panic(err)
		}
		b = append(b, d)
		pan := string(b)
		if seen[pan] {
			continue
		}
		p, err := card.Parse(pan, card.ParseOptions{})
		if err != nil || p.Brand() != s.brand {
			panic(fmt.Sprintf("devclustertest: generated PAN %s is not a valid %v", Mask(pan), s.brand))
		}
		seen[pan] = true
		out = append(out, pan)
	}
	return out
}

// Brands returns the distinct brands among pans.
func Brands(pans []string) map[card.Brand]int {
	m := map[card.Brand]int{}
	for _, p := range pans {
		m[card.DetectBrand(p)]++
	}
	return m
}

// Mask shows a PAN or token masked (card.MaskDigits), for failure
// messages.
func Mask(s string) string { return card.MaskDigits(s) }

// Finding is one PAN found in clear in a file (a plain value). Masked is the
// only form of the PAN it holds.
type Finding struct {
	Path   string
	Offset int
	Masked string
}

// FindPANs walks root and reports every occurrence of any of pans as ASCII
// digits inside a file (also inside longer runs of digits), and the files it
// scanned. Symlinks are not followed; unreadable files are errors.
func FindPANs(root string, pans []string) ([]Finding, []string, error) {
	set := make(map[string]bool, len(pans))
	minLen, maxLen := 19, 12
	for _, p := range pans {
		set[p] = true
		minLen = min(minLen, len(p))
		maxLen = max(maxLen, len(p))
	}
	var found []Finding
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, path)
		for i := 0; i < len(b); {
			if b[i] < '0' || b[i] > '9' {
				i++
				continue
			}
			j := i
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			if j-i >= minLen {
				for s := i; s+minLen <= j; s++ {
					for l := minLen; l <= maxLen && s+l <= j; l++ {
						if set[string(b[s:s+l])] {
							found = append(found, Finding{Path: path, Offset: s, Masked: Mask(string(b[s : s+l]))})
						}
					}
				}
			}
			i = j
		}
		return nil
	})
	return found, files, err
}
