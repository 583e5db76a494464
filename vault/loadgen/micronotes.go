package loadgen

import (
	"fmt"
	"io"
	"strings"
)

// MicroNotes summarises Go micro-benchmarks the issues ask to see side by
// side, as markdown paragraphs (WriteMarkdown puts them above the full
// micro-benchmark table):
//
//   - package keys: each HSM operation through the session pool from one
//     goroutine, from several (pool-parallel) and on one dedicated session
//     with direct PKCS#11 calls (raw), with the pool's cost as pool/raw;
//   - FF1 of 16-digit PANs with the AES key inside SoftHSM (keys
//     BenchmarkFF1HSM) against the same FF1 on crypto/aes in process
//     (keys/fpe BenchmarkFF1PAN16), as a ratio of rates from the same run.
//
// Benchmarks that were not run are left out; with none, no note.
func MicroNotes(micro []MicroResult) []string {
	var notes []string
	if s := keysTable(micro); s != "" {
		notes = append(notes, s)
	}
	if s := ff1Table(micro); s != "" {
		notes = append(notes, s)
	}
	return notes
}

// find returns the ns/op (or unit) value of the benchmark of a package
// whose import path ends with pkgSuffix.
func findMicro(micro []MicroResult, pkgSuffix, name, unit string) (float64, bool) {
	for _, m := range micro {
		if m.Name != name || !(m.Package == pkgSuffix || strings.HasSuffix(m.Package, "/"+pkgSuffix)) {
			continue
		}
		for _, v := range m.Metrics {
			if v.Unit == unit && v.Value > 0 {
				return v.Value, true
			}
		}
	}
	return 0, false
}

// keysOps are the benchmarks of package keys with pool/pool-parallel/raw
// variants, in the order of the table.
var keysOps = []struct{ title, name string }{
	{"AES-256-GCM seal, 128 B", "BenchmarkSealGCM128"},
	{"HMAC-SHA256", "BenchmarkHMAC"},
	{"ECDSA P-256 sign", "BenchmarkSignECDSAP256"},
	{"RSA-3072 PSS sign", "BenchmarkSignRSA3072"},
	{"AES-ECB, 1 block", "BenchmarkECB/blocks=1"},
	{"AES-ECB, 16 blocks", "BenchmarkECB/blocks=16"},
	{"AES-ECB, 256 blocks", "BenchmarkECB/blocks=256"},
	{"AES-ECB, 4096 blocks", "BenchmarkECB/blocks=4096"},
}

func keysTable(micro []MicroResult) string {
	var b strings.Builder
	rows := 0
	cellOf := func(name string) (string, float64) {
		ns, ok := findMicro(micro, "keys", name, "ns/op")
		if !ok {
			return "-", 0
		}
		return fmt.Sprintf("%s/s (%s)", groupDigits(uint64(1e9/ns+0.5)), fmtNs(ns)), ns
	}
	for _, op := range keysOps {
		pool, poolNs := cellOf(op.name + "/pool")
		par, _ := cellOf(op.name + "/pool-parallel")
		raw, rawNs := cellOf(op.name + "/raw")
		if poolNs == 0 && rawNs == 0 && par == "-" {
			continue
		}
		if rows == 0 {
			b.WriteString("**HSM operations (package keys, SoftHSM, median of the runs).** " +
				"pool: through the session pool from one goroutine; pool-parallel: 4×GOMAXPROCS goroutines sharing the pool; " +
				"raw: one dedicated session, direct PKCS#11 calls. pool/raw is the pool's overhead.\n\n")
			b.WriteString("| Operation | pool | pool-parallel | raw | pool/raw |\n| --- | --- | --- | --- | --- |\n")
		}
		ratio := "-"
		if poolNs > 0 && rawNs > 0 {
			ratio = fmt.Sprintf("%.2f", poolNs/rawNs)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", op.title, pool, par, raw, ratio)
		rows++
	}
	return strings.TrimRight(b.String(), "\n")
}

func ff1Table(micro []MicroResult) string {
	var b strings.Builder
	rows := 0
	for _, v := range []struct{ title, hsm, soft, unit string }{
		{"single PAN", "BenchmarkFF1HSM/single", "BenchmarkFF1PAN16/single", "ns/op"},
		{"batch of 16", "BenchmarkFF1HSM/batch16", "BenchmarkFF1PAN16/batch16", "ns/item"},
		{"batch of 256", "BenchmarkFF1HSM/batch256", "BenchmarkFF1PAN16/batch256", "ns/item"},
		{"batch of 4096", "BenchmarkFF1HSM/batch4096", "BenchmarkFF1PAN16/batch4096", "ns/item"},
	} {
		h, hok := findMicro(micro, "keys", v.hsm, v.unit)
		s, sok := findMicro(micro, "keys/fpe", v.soft, v.unit)
		if !hok && !sok {
			continue
		}
		if rows == 0 {
			b.WriteString("**FF1, 16-digit PANs: key inside SoftHSM (keys BenchmarkFF1HSM) vs crypto/aes in process " +
				"(keys/fpe BenchmarkFF1PAN16), same run.** A batch runs each FF1 round of all its PANs as one ECB call.\n\n")
			b.WriteString("| FF1 | HSM | in process | HSM / in process |\n| --- | --- | --- | --- |\n")
		}
		cell := func(ns float64, ok bool) string {
			if !ok {
				return "-"
			}
			return fmt.Sprintf("%s PANs/s (%s)", groupDigits(uint64(1e9/ns+0.5)), fmtNs(ns))
		}
		ratio := "-"
		if hok && sok {
			ratio = fmt.Sprintf("%.3f", s/h)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", v.title, cell(h, hok), cell(s, sok), ratio)
		rows++
	}
	return strings.TrimRight(b.String(), "\n")
}

// fmtNs prints nanoseconds per operation compactly.
func fmtNs(ns float64) string {
	switch {
	case ns < 1000:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
}

// WriteRawText prints raw limits as an aligned table (`panvault bench --raw`).
func WriteRawText(w io.Writer, lims []RawLimit) error {
	width := 0
	for _, r := range lims {
		width = max(width, len(r.Name))
	}
	for _, r := range lims {
		if _, err := fmt.Fprintf(w, "%-*s  %12s  %s\n", width, r.Name, fmtRaw(r), r.Detail); err != nil {
			return err
		}
	}
	return nil
}
