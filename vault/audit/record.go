package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/panvault/panvault/vault/card"
	"strconv"
	"strings"
	"time"
)

// MaxRecordBytes bounds one encoded record (without its hash field). An
// Entry that would encode to more is refused with ErrTooLarge, so that Open
// can find the last line by reading a bounded tail and Verify can bound its
// line buffer.
const MaxRecordBytes = 16 << 10

// hashSuffixLen is the length of `,"hash":"<64 hex>"}` that turns a record's
// canonical bytes (minus their closing brace) into its line (minus "\n").
const hashSuffixLen = len(`,"hash":"`) + 2*sha256.Size + len(`"}`)

// maxLineBytes bounds one line of the file, newline included.
const maxLineBytes = MaxRecordBytes - 1 + hashSuffixLen + 1

// zeroHash is the prev of the first record.
var zeroHash = [sha256.Size]byte{}

// record is the canonical form: encoding/json writes these fields in this
// order, without spaces. Its JSON is what the hash covers. Changing the
// field set or order changes the format (FORMAT.md).
type record struct {
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
}

// body is the part of a record that does not depend on the chain: Append
// encodes it on the caller's goroutine so the committer only splices in seq
// and prev. Its fields must stay in the same order as record's.
type body struct {
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
}

// line is a record as read back, hash included.
type line struct {
	record
	Hash string `json:"hash"`
}

// encodeBody checks e and returns its body's JSON without the enclosing
// braces. now supplies the time of an Entry without one.
func encodeBody(e Entry, now func() time.Time) ([]byte, error) {
	t := e.Time
	if t.IsZero() {
		t = now()
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("%w: time outside years 1 to 9999", ErrInvalidEntry)
	}
	// Masked and Reason carry what the request sent; names and identities
	// are checked where they enter (a key may well be named
	// "dek-20261125-0001", a certificate identity carry a UUID).
	for _, f := range [...]struct{ name, v string }{{"reason", e.Reason}, {"masked", e.Masked}} {
		if card.HasPANLikeRun(f.v) {
			return nil, fmt.Errorf("%w (field %s)", ErrUnmasked, f.name)
		}
	}
	// Invalid UTF-8 becomes U+FFFD here, not in json.Marshal (which would
	// write it as an escape that a decode and re-encode does not give back).
	v := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	b, err := json.Marshal(body{
		Time: t.Format(time.RFC3339Nano), Node: v(e.Node), Identity: v(e.Identity), Method: v(e.Method),
		Code: v(e.Code), Reason: v(e.Reason), Scheme: v(e.Scheme), Key: v(e.Key), Masked: v(e.Masked), Items: e.Items,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}
	b = b[1 : len(b)-1]
	// {"seq":<20 digits>, body ,"prev":"<64 hex>"}
	if len(`{"seq":,`)+20+len(b)+len(`,"prev":""}`)+2*sha256.Size > MaxRecordBytes {
		return nil, ErrTooLarge
	}
	return b, nil
}

// appendLine appends to dst the line of the record with this seq, prev and
// pre-encoded body, and returns it with the record's hash. The record bytes
// equal json.Marshal(record{...}) (record_test.go checks this).
func appendLine(dst []byte, seq uint64, prev [sha256.Size]byte, b []byte) ([]byte, [sha256.Size]byte) {
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, ',')
	dst = append(dst, b...)
	dst = append(dst, `,"prev":"`...)
	dst = hex.AppendEncode(dst, prev[:])
	dst = append(dst, `"}`...)
	sum := sha256.Sum256(dst[start:])
	dst = dst[:len(dst)-1] // drop "}"
	dst = append(dst, `,"hash":"`...)
	dst = hex.AppendEncode(dst, sum[:])
	dst = append(dst, "\"}\n"...)
	return dst, sum
}

// parseLine checks one line (without its newline) on its own: that it is a
// record in canonical form and that its hash is right. It does not check
// seq or prev against neighbours. Reasons never quote the line.
func parseLine(n uint64, b []byte) (line, [sha256.Size]byte, error) {
	var l line
	var sum [sha256.Size]byte
	if len(b) < hashSuffixLen+2 {
		return l, sum, corrupt(n, "too short for a record")
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, sum, corrupt(n, "not a JSON audit record (%s)", jsonProblem(err))
	}
	canon, err := json.Marshal(l.record)
	if err != nil {
		return l, sum, corrupt(n, "cannot re-encode record")
	}
	want := make([]byte, 0, len(canon)-1+hashSuffixLen)
	want = append(want, canon[:len(canon)-1]...)
	want = append(want, `,"hash":"`...)
	want = append(want, l.Hash...)
	want = append(want, `"}`...)
	if string(want) != string(b) {
		return l, sum, corrupt(n, "not in canonical form (field names, order, spacing or escaping differ)")
	}
	got, err := hex.DecodeString(l.Hash)
	if err != nil || len(got) != sha256.Size || hex.EncodeToString(got) != l.Hash {
		return l, sum, corrupt(n, "hash is not 64 lower-case hex digits")
	}
	sum = sha256.Sum256(canon)
	if string(got) != string(sum[:]) {
		return l, sum, corrupt(n, "hash does not match the record (seq %d)", l.Seq)
	}
	return l, sum, nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %s has the wrong type", e.Field)
	default:
		return "malformed"
	}
}
