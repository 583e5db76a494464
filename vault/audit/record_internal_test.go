package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// appendLine must produce exactly what encoding/json makes of record, so
// that Verify's canonical check accepts every line the writer writes.
func TestAppendLineIsTheJSONOfRecord(t *testing.T) {
	prev := sha256.Sum256([]byte("x"))
	for _, e := range []Entry{
		{},
		{Node: "n", Identity: "CN=<a&b>", Method: "/m", Code: "OK", Reason: "\u2028\"\\\n\t", Masked: "411111******1111", Items: -3},
		{Reason: string([]byte{0xff, 'a'}), Key: "ключ", Scheme: "emoji 🙂"},
	} {
		b, err := encodeBody(e, func() time.Time { return time.Unix(1, 5).In(time.FixedZone("x", 3600)) })
		if err != nil {
			t.Fatal(err)
		}
		got, sum := appendLine(nil, 42, prev, b)
		l, psum, err := parseLine(1, bytes.TrimSuffix(got, []byte("\n")))
		if err != nil {
			t.Fatalf("%q: %v", got, err)
		}
		if psum != sum || l.Seq != 42 || l.Time != "1970-01-01T00:00:01.000000005Z" {
			t.Fatalf("parsed %+v", l)
		}
		canon, _ := json.Marshal(l.record)
		if sha256.Sum256(canon) != sum {
			t.Fatal("hash is not over json.Marshal(record)")
		}
	}
}

func TestEncodeBodyRefusals(t *testing.T) {
	now := time.Now
	if _, err := encodeBody(Entry{Reason: strings.Repeat("a", MaxRecordBytes)}, now); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized entry: %v", err)
	}
	if _, err := encodeBody(Entry{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, now); !errors.Is(err, ErrInvalidEntry) {
		t.Fatalf("year 10000: %v", err)
	}
}
