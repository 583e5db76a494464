package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/panvault/panvault/vault/audit"
)

// formatRecord mirrors FORMAT.md independently of the package: the fields in
// their documented order.
type formatRecord struct {
	Seq      uint64 `json:"seq"`
	Time     string `json:"time"`
	Node     string `json:"node"`
	Identity string `json:"identity"`
	Method   string `json:"method"`
	Code     string `json:"code"`
	Reason   string `json:"reason"`
	Scheme   string `json:"scheme"`
	Key      string `json:"key"`
	Masked   string `json:"masked"`
	Items    int    `json:"items"`
	Prev     string `json:"prev"`
	Hash     string `json:"hash,omitempty"`
}

func decodeLine(t *testing.T, b []byte) formatRecord {
	t.Helper()
	var r formatRecord
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func encodeLine(t *testing.T, r formatRecord) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rehash sets r.Hash as FORMAT.md says: SHA-256 of the record without it.
func rehash(t *testing.T, r formatRecord) formatRecord {
	r.Hash = ""
	sum := sha256.Sum256(encodeLine(t, r))
	r.Hash = hex.EncodeToString(sum[:])
	return r
}

// wantCorruptAt checks that err is a CorruptError naming line n.
func wantCorruptAt(t *testing.T, what string, err error, n uint64) {
	t.Helper()
	var ce *audit.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, audit.ErrCorrupt) {
		t.Fatalf("%s: %v, want a CorruptError at line %d", what, err, n)
	}
	if ce.Line != n {
		t.Fatalf("%s: error names line %d (%v), want %d", what, ce.Line, err, n)
	}
	if !strings.Contains(err.Error(), "line ") {
		t.Fatalf("%s: message %q does not name the line", what, err)
	}
}

func TestFormatMatchesTheDocumentedRecipe(t *testing.T) {
	path := writeLog(t, 5)
	prev := strings.Repeat("0", 64)
	for i, b := range readLines(t, path) {
		r := decodeLine(t, b)
		if got := encodeLine(t, r); !bytes.Equal(got, b) {
			t.Fatalf("line %d is not the documented field order:\n%s\n%s", i+1, b, got)
		}
		// FORMAT.md: canonical bytes = line minus its last 75 bytes, plus "}".
		canon := append(bytes.Clone(b[:len(b)-75]), '}')
		sum := sha256.Sum256(canon)
		if hex.EncodeToString(sum[:]) != r.Hash || r.Seq != uint64(i+1) || r.Prev != prev {
			t.Fatalf("line %d: hash/seq/prev do not follow FORMAT.md: %+v", i+1, r)
		}
		if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil || !strings.HasSuffix(r.Time, "Z") {
			t.Fatalf("line %d: time %q", i+1, r.Time)
		}
		prev = r.Hash
	}
}

func TestVerifySummary(t *testing.T) {
	path := writeLog(t, 5)
	sum, err := verifyFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	lines := readLines(t, path)
	last := decodeLine(t, lines[4])
	if sum.Entries != 5 || !sum.First.Equal(base) || !sum.Last.Equal(base.Add(4*time.Millisecond)) || sum.LastHash != last.Hash {
		t.Fatalf("summary %+v", sum)
	}
	empty, err := audit.Verify(bytes.NewReader(nil))
	if err != nil || empty.Entries != 0 || empty.LastHash != strings.Repeat("0", 64) {
		t.Fatalf("empty log: %+v, %v", empty, err)
	}
}

// TestTamperingIsNamed changes every field of every line, keeping the stored
// hash: Verify must name that line.
func TestTamperingIsNamed(t *testing.T) {
	const n = 4
	path := writeLog(t, n)
	lines := readLines(t, path)
	edits := map[string]func(*formatRecord){
		"seq":      func(r *formatRecord) { r.Seq++ },
		"time":     func(r *formatRecord) { r.Time = strings.Replace(r.Time, "2026", "2025", 1) },
		"node":     func(r *formatRecord) { r.Node += "x" },
		"identity": func(r *formatRecord) { r.Identity = "spiffe://panvault/client/other" },
		"method":   func(r *formatRecord) { r.Method = "/panvault.v1.Vault/Tokenize" },
		"code":     func(r *formatRecord) { r.Code = "PERMISSION_DENIED" },
		"reason":   func(r *formatRecord) { r.Reason = "" },
		"scheme":   func(r *formatRecord) { r.Scheme = "random" },
		"key":      func(r *formatRecord) { r.Key = "other" },
		"masked":   func(r *formatRecord) { r.Masked = "555555******4444" },
		"items":    func(r *formatRecord) { r.Items += 100 },
		"prev":     func(r *formatRecord) { r.Prev = flipHex(r.Prev) },
		"hash":     func(r *formatRecord) { r.Hash = flipHex(r.Hash) },
	}
	for i := range n {
		for field, edit := range edits {
			r := decodeLine(t, lines[i])
			edit(&r)
			changed := cloneLines(lines)
			changed[i] = encodeLine(t, r)
			_, err := audit.Verify(bytes.NewReader(joinLines(changed)))
			wantCorruptAt(t, "line "+itoa(i+1)+" field "+field, err, uint64(i+1))
		}
		// A careful forger recomputes the line's hash: the next line's prev
		// no longer matches (the last line needs an outside anchor).
		if i < n-1 {
			r := decodeLine(t, lines[i])
			r.Code = "NOT_FOUND"
			changed := cloneLines(lines)
			changed[i] = encodeLine(t, rehash(t, r))
			_, err := audit.Verify(bytes.NewReader(joinLines(changed)))
			wantCorruptAt(t, "rehashed line "+itoa(i+1), err, uint64(i+2))
		}
		// Same content, other spacing: not canonical.
		changed := cloneLines(lines)
		changed[i] = bytes.Replace(changed[i], []byte(`,"node":`), []byte(`, "node":`), 1)
		_, err := audit.Verify(bytes.NewReader(joinLines(changed)))
		wantCorruptAt(t, "respaced line "+itoa(i+1), err, uint64(i+1))
	}
}

func TestDeletedLineIsNamed(t *testing.T) {
	const n = 5
	lines := readLines(t, writeLog(t, n))
	for i := range n - 1 {
		changed := append(cloneLines(lines[:i]), lines[i+1:]...)
		_, err := audit.Verify(bytes.NewReader(joinLines(changed)))
		wantCorruptAt(t, "deleted line "+itoa(i+1), err, uint64(i+1))
	}
	// Cutting the last line leaves a shorter valid chain: only an anchor
	// (the summary of the full log) shows it.
	full, err := audit.Verify(bytes.NewReader(joinLines(lines)))
	if err != nil {
		t.Fatal(err)
	}
	cut, err := audit.Verify(bytes.NewReader(joinLines(lines[:n-1])))
	if err != nil || cut.Entries != n-1 || cut.LastHash == full.LastHash {
		t.Fatalf("cut log: %+v, %v; full %+v", cut, err, full)
	}
}

func TestReorderedLinesAreNamed(t *testing.T) {
	const n = 5
	lines := readLines(t, writeLog(t, n))
	for i := range n - 1 {
		changed := cloneLines(lines)
		changed[i], changed[i+1] = changed[i+1], changed[i]
		_, err := audit.Verify(bytes.NewReader(joinLines(changed)))
		wantCorruptAt(t, "swapped lines "+itoa(i+1), err, uint64(i+1))
	}
	dup := append(cloneLines(lines), lines[2])
	_, err := audit.Verify(bytes.NewReader(joinLines(dup)))
	wantCorruptAt(t, "duplicated line", err, n+1)
}

func TestVerifyRefusesMalformedInput(t *testing.T) {
	lines := readLines(t, writeLog(t, 3))
	good := joinLines(lines)
	cases := map[string]struct {
		in   []byte
		line uint64
	}{
		"no final newline":  {good[:len(good)-1], 3},
		"torn last line":    {good[:len(good)-20], 3},
		"blank line":        {append(joinLines(lines[:1]), append([]byte("\n"), joinLines(lines[1:])...)...), 2},
		"not json":          {append(bytes.Clone(good), "hello\n"...), 4},
		"extra field":       {joinLines([][]byte{lines[0], append(bytes.Clone(lines[1][:len(lines[1])-1]), `,"x":1}`...), lines[2]}), 2},
		"overlong line":     {append(bytes.Clone(good), append(bytes.Repeat([]byte("a"), 40<<10), '\n')...), 4},
		"upper-case hash":   {joinLines([][]byte{lines[0], upperHash(lines[1]), lines[2]}), 2},
		"crlf line endings": {bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")), 1},
	}
	for name, c := range cases {
		_, err := audit.Verify(bytes.NewReader(c.in))
		wantCorruptAt(t, name, err, c.line)
	}
}

// upperHash writes a line's hash in upper case: same value, not canonical.
func upperHash(l []byte) []byte {
	l = bytes.Clone(l)
	h := l[len(l)-66 : len(l)-2]
	copy(h, bytes.ToUpper(h))
	return l
}

func flipHex(s string) string {
	b := []byte(s)
	if b[0] == '0' {
		b[0] = '1'
	} else {
		b[0] = '0'
	}
	return string(b)
}

func cloneLines(lines [][]byte) [][]byte {
	out := make([][]byte, len(lines))
	copy(out, lines)
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

// Anchors catch what the chain cannot: a log cut back to an earlier, still
// valid record, and a log rewritten (rehashed from some line on) by someone
// who could not also change the anchor.
func TestAnchorsCatchCutAndRewrittenLogs(t *testing.T) {
	const n = 6
	lines := readLines(t, writeLog(t, n))
	full := joinLines(lines)
	third, last := decodeLine(t, lines[2]), decodeLine(t, lines[n-1])
	anchors := []audit.Anchor{{Seq: 3, Hash: third.Hash}, {Seq: n, Hash: last.Hash}}
	if sum, err := audit.Verify(bytes.NewReader(full), anchors...); err != nil || sum.Entries != n {
		t.Fatalf("full log against its anchors: %+v, %v", sum, err)
	}
	if _, err := audit.Verify(bytes.NewReader(full), audit.Anchor{}); err != nil {
		t.Fatalf("the zero anchor: %v", err)
	}

	// Cut back to line 4: a valid chain, but the anchor of seq 6 is past it.
	if _, err := audit.Verify(bytes.NewReader(joinLines(lines[:4]))); err != nil {
		t.Fatalf("the cut log is a valid chain on its own: %v", err)
	}
	_, err := audit.Verify(bytes.NewReader(joinLines(lines[:4])), anchors...)
	if !errors.Is(err, audit.ErrCutOff) || !strings.Contains(err.Error(), "ends at seq 4") {
		t.Fatalf("cut log against the anchors: %v, want ErrCutOff naming seq 4", err)
	}
	// An empty file against an anchor.
	if _, err := audit.Verify(bytes.NewReader(nil), anchors[0]); !errors.Is(err, audit.ErrCutOff) {
		t.Fatalf("empty log against an anchor: %v", err)
	}

	// Line 2 changed and every hash from there recomputed: a valid chain,
	// but the record of seq 3 no longer has the anchored hash.
	rewritten := cloneLines(lines)
	prev := decodeLine(t, lines[0]).Hash
	for i := 1; i < n; i++ {
		r := decodeLine(t, lines[i])
		if i == 1 {
			r.Code = "NOT_FOUND"
		}
		r.Prev = prev
		r = rehash(t, r)
		rewritten[i] = encodeLine(t, r)
		prev = r.Hash
	}
	if _, err := audit.Verify(bytes.NewReader(joinLines(rewritten))); err != nil {
		t.Fatalf("the rewritten log is a valid chain on its own: %v", err)
	}
	_, err = audit.Verify(bytes.NewReader(joinLines(rewritten)), anchors...)
	wantCorruptAt(t, "rewritten log against the anchors", err, 3)

	// Two anchors that disagree about one seq are refused.
	if _, err := audit.Verify(bytes.NewReader(full), anchors[0], audit.Anchor{Seq: 3, Hash: last.Hash}); !errors.Is(err, audit.ErrCorrupt) {
		t.Fatalf("conflicting anchors: %v", err)
	}
}
