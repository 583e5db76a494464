package devclustertest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/panvault/panvault/vault/card"
)

func TestPANsDeterministicValidVaried(t *testing.T) {
	a, b := PANs(500, 7), PANs(500, 7)
	if !slices.Equal(a, b) {
		t.Fatal("same seed gave different PANs")
	}
	if c := PANs(500, 8); slices.Equal(a, c) {
		t.Fatal("different seeds gave the same PANs")
	}
	seen := map[string]bool{}
	lengths := map[int]bool{}
	for i, p := range a {
		if _, err := card.Parse(p, card.ParseOptions{}); err != nil {
			t.Fatalf("PAN %d (%s) invalid: %v", i, Mask(p), err)
		}
		if seen[p] {
			t.Fatalf("PAN %d (%s) repeated", i, Mask(p))
		}
		seen[p] = true
		lengths[len(p)] = true
	}
	brands := Brands(a)
	for _, br := range []card.Brand{card.BrandVisa, card.BrandMastercard, card.BrandAmex, card.BrandDiscover, card.BrandJCB,
		card.BrandDiners, card.BrandUnionPay, card.BrandMaestro, card.BrandMir} {
		if brands[br] == 0 {
			t.Errorf("no %v PAN generated", br)
		}
	}
	if len(lengths) < 5 {
		t.Errorf("only %d distinct lengths", len(lengths))
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"4111111111111111":    "411111******1111",
		"6200000000000000005": "620000*********0005",
		"1234567890":          "[len 10]",
		"30569309025904":      "30569*****5904", // 14 digits: five stay hidden, as for a PAN
	} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%d digits) = %q, want %q", len(in), got, want)
		}
	}
}

func TestFindPANs(t *testing.T) {
	pans := PANs(20, 3)
	dir := t.TempDir()
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A clean file: other digits, masked forms, a PAN missing its last digit.
	clean := []byte("token 4111119876541111 masked " + Mask(pans[0]) + " cut " + pans[1][:len(pans[1])-1] + "x")
	write("clean.log", clean)
	found, files, err := FindPANs(dir, pans)
	if err != nil || len(found) != 0 || len(files) != 1 {
		t.Fatalf("clean dir: found %v, files %d, err %v", found, len(files), err)
	}
	// Planted inside binary data and inside a longer digit run, in a subdirectory.
	dirty := append([]byte{0, 1, 2}, []byte("99"+pans[5]+"77")...)
	dirty = append(dirty, 0xff)
	dirty = append(dirty, []byte(pans[9])...)
	write("sub/raft.db", dirty)
	found, files, err = FindPANs(dir, pans)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || len(found) != 2 {
		t.Fatalf("found %d PANs in %d files, want 2 in 2: %v", len(found), len(files), found)
	}
	if found[0].Masked != Mask(pans[5]) || found[0].Offset != 5 || found[1].Masked != Mask(pans[9]) {
		t.Fatalf("findings %v", found)
	}
}
