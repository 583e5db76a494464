package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/audit"
)

// auditLogFile writes a real audit log of n entries and returns its path
// and head hash.
func auditLogFile(t *testing.T, n int) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit", "audit.log")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for i := range n {
		e := audit.Entry{Time: base.Add(time.Duration(i) * time.Second), Node: "n1", Identity: "CN=app",
			Method: "/panvault.v1.Vault/Detokenize", Code: "OK", Masked: "411111******1111"}
		if err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	_, head := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, head
}

func TestAuditVerifyCommand(t *testing.T) {
	path, head := auditLogFile(t, 3)
	code, out, errOut := runCLI(t, "", "audit", "verify", path)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"entries:   3", "first:     2026-03-04T05:06:07Z", "last:      2026-03-04T05:06:09Z", "last hash: " + head} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = runCLI(t, "", "audit", "verify", "-o", "json", path)
	if code != 0 {
		t.Fatalf("json: exit %d, stderr %q", code, errOut)
	}
	var got auditSummaryJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("json output %q: %v", out, err)
	}
	if got.Entries != 3 || got.LastHash != head || got.First != "2026-03-04T05:06:07Z" || got.Last != "2026-03-04T05:06:09Z" {
		t.Fatalf("json summary %+v", got)
	}
}

func TestAuditVerifyCommandNamesTheBrokenLine(t *testing.T) {
	path, _ := auditLogFile(t, 3)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines[1] = bytes.Replace(lines[1], []byte(`"code":"OK"`), []byte(`"code":"NO"`), 1)
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", "audit", "verify", path)
	if code != 1 {
		t.Fatalf("exit %d for a broken chain, want 1 (stdout %q)", code, out)
	}
	if !strings.Contains(errOut, "line 2:") || !strings.Contains(errOut, "hash does not match") {
		t.Fatalf("stderr %q does not name line 2 and the reason", errOut)
	}
	if strings.Contains(out, "verified") {
		t.Fatalf("stdout claims success: %q", out)
	}
}

func TestAuditVerifyCommandUsage(t *testing.T) {
	if code, _, errOut := runCLI(t, "", "audit", "verify"); code != 2 || !strings.Contains(errOut, "arg") {
		t.Fatalf("no FILE: exit %d, stderr %q; want 2 and a usage message", code, errOut)
	}
	missing := filepath.Join(t.TempDir(), "none.log")
	if code, _, errOut := runCLI(t, "", "audit", "verify", missing); code != 1 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing file: exit %d, stderr %q; want 1", code, errOut)
	}
}

// --anchor: a file holding the anchored record passes; the same file cut
// back before it fails; a malformed anchor is a usage error.
func TestAuditVerifyCommandAnchors(t *testing.T) {
	path, head := auditLogFile(t, 3)
	code, out, errOut := runCLI(t, "", "audit", "verify", path, "--anchor", "3:"+head)
	if code != 0 || !strings.Contains(out, "anchors:   1 matched (highest seq 3)") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if err := os.WriteFile(path, bytes.Join(lines[:2], nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, "", "audit", "verify", path); code != 0 {
		t.Fatalf("the cut file alone: exit %d, want 0 (a valid chain)", code)
	}
	code, out, errOut = runCLI(t, "", "audit", "verify", path, "--anchor", "3:"+head)
	if code != 1 || !strings.Contains(errOut, "cut off") || !strings.Contains(errOut, "ends at seq 2") || strings.Contains(out, "verified") {
		t.Fatalf("cut file against its anchor: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, bad := range []string{"3", "0:" + head, "x:" + head, "3:" + head[:63], "3:" + strings.ToUpper(head)} {
		if code, _, errOut := runCLI(t, "", "audit", "verify", path, "--anchor", bad); code != 2 || !strings.Contains(errOut, "--anchor") {
			t.Errorf("--anchor %q: exit %d, stderr %q; want 2", bad, code, errOut)
		}
	}
}

// A rotated log is verified as its files in seq order; a file left out
// breaks the chain at the next one; a set that starts past seq 1 says so.
func TestAuditVerifyCommandRotatedFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Options{MaxFileBytes: 1500})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		e := audit.Entry{Node: "n1", Identity: "CN=app", Method: "/panvault.v1.TokenService/Detokenize", Code: "OK", Items: i}
		if err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rotated, err := audit.RotatedFiles(path)
	if err != nil || len(rotated) < 3 {
		t.Fatalf("rotated files %v, %v", rotated, err)
	}
	all := append(append([]string(nil), rotated...), path)
	code, out, errOut := runCLI(t, "", append([]string{"audit", "verify", "-o", "json"}, all...)...)
	var sums []auditSummaryJSON
	if err := json.Unmarshal([]byte(out), &sums); code != 0 || err != nil || len(sums) != len(all) {
		t.Fatalf("exit %d, %v, stdout %q, stderr %q", code, err, out, errOut)
	}
	for i := 1; i < len(sums); i++ {
		if sums[i].Entries > 0 && sums[i].FirstSeq != sums[i-1].LastSeq+1 {
			t.Fatalf("file %d starts at %d after %d", i, sums[i].FirstSeq, sums[i-1].LastSeq)
		}
	}
	if last := sums[len(sums)-1]; last.LastSeq != 20 || sums[0].FirstSeq != 1 || sums[0].Continues {
		t.Fatalf("summaries %+v", sums)
	}

	gap := append([]string{rotated[0]}, all[2:]...)
	code, _, errOut = runCLI(t, "", append([]string{"audit", "verify"}, gap...)...)
	if code != 1 || !strings.Contains(errOut, all[2]+": ") || !strings.Contains(errOut, "line 1:") {
		t.Fatalf("a file left out: exit %d, stderr %q; want 1 naming line 1 of %s", code, errOut, all[2])
	}

	code, out, errOut = runCLI(t, "", "audit", "verify", rotated[len(rotated)-1], path)
	if code != 0 || !strings.Contains(out, "continuing a file not given") {
		t.Fatalf("the newest files alone: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
