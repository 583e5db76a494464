package loadgen

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

const microOut = `pkg: github.com/panvault/panvault/keys
BenchmarkSealGCM128/pool-2          	  100	     20000 ns/op
BenchmarkSealGCM128/pool-parallel-2 	  100	     10000 ns/op
BenchmarkSealGCM128/raw-2           	  100	     16000 ns/op
BenchmarkECB/blocks=256/pool-2      	  100	     25000 ns/op
BenchmarkFF1HSM/batch256-2          	  100	    160000 ns/op	     625.0 ns/item
pkg: github.com/panvault/panvault/keys/fpe
BenchmarkFF1PAN16/batch256-2        	  100	     48000 ns/op	     187.5 ns/item
BenchmarkFF1PAN16/single-2          	  100	       500 ns/op
`

func TestMicroNotes(t *testing.T) {
	micro, err := ParseGoBench(strings.NewReader(microOut))
	if err != nil {
		t.Fatal(err)
	}
	notes := MicroNotes(micro)
	if len(notes) != 2 {
		t.Fatalf("%d notes, want the keys table and the FF1 table:\n%s", len(notes), strings.Join(notes, "\n---\n"))
	}
	for _, want := range []string{
		// 20 µs through the pool, 16 µs raw: ratio 1.25.
		"| AES-256-GCM seal, 128 B | 50,000/s (20.0 µs) | 100,000/s (10.0 µs) | 62,500/s (16.0 µs) | 1.25 |",
		"| AES-ECB, 256 blocks | 40,000/s (25.0 µs) | - | - | - |",
	} {
		if !strings.Contains(notes[0], want) {
			t.Errorf("keys table lacks %q:\n%s", want, notes[0])
		}
	}
	if strings.Contains(notes[0], "RSA") {
		t.Error("benchmarks that did not run are listed")
	}
	for _, want := range []string{
		// 625 ns per PAN in the HSM, 187.5 in process: 0.300.
		"| batch of 256 | 1,600,000 PANs/s (625 ns) | 5,333,333 PANs/s (188 ns) | 0.300 |",
		"| single PAN | - | 2,000,000 PANs/s (500 ns) | - |",
	} {
		if !strings.Contains(notes[1], want) {
			t.Errorf("FF1 table lacks %q:\n%s", want, notes[1])
		}
	}
	if MicroNotes(nil) != nil {
		t.Error("notes without benchmarks")
	}
	// WriteMarkdown puts them in the micro-benchmark section.
	var b bytes.Buffer
	if err := WriteMarkdown(&b, Results{Micro: micro}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), notes[1]) {
		t.Error("markdown lacks the FF1 table")
	}
}

func TestWriteRawText(t *testing.T) {
	var b bytes.Buffer
	err := WriteRawText(&b, []RawLimit{
		{Name: RawFsyncP50, Value: 0.000250, Detail: "fsync"},
		{Name: RawHSMSignPar, Value: 21000.4, Detail: "sign"},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "250µs") || !strings.Contains(lines[1], "21,000/s") ||
		strings.LastIndex(lines[0], "fsync") < len("hsm.sign-p256.par") {
		t.Fatalf("raw text:\n%s", b.String())
	}
}

func TestProcessCPU(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no /proc")
	}
	if err != nil {
		t.Fatal(err)
	}
	// Burn some CPU: the figure must grow, by no more than the wall time
	// times the CPUs.
	start := time.Now()
	x := 0
	for time.Since(start) < 200*time.Millisecond {
		x++
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before || after-before > time.Since(start)*time.Duration(64) || x == 0 {
		t.Fatalf("cpu %v then %v over %v", before, after, time.Since(start))
	}
	if _, err := ProcessCPU(-5); err == nil {
		t.Error("cpu of a process that cannot exist")
	}
}

func TestProcessAnonRSS(t *testing.T) {
	rss, err := ProcessRSS(os.Getpid())
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no /proc")
	}
	anon, err := ProcessAnonRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if anon == 0 || anon > rss {
		t.Fatalf("anonymous rss %d of rss %d", anon, rss)
	}
	if _, err := ProcessAnonRSS(-5); err == nil {
		t.Error("rss of a process that cannot exist")
	}
}
