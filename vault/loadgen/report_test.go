package loadgen

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/panvault/panvault/vault/loadgen/latency"
)

// newTestWorker returns a worker with lat recorded count times as successes.
func newTestWorker(lat time.Duration, count int) *worker {
	w := &worker{rec: latency.New(), failed: map[codes.Code]uint64{}, itemErrs: map[int32]uint64{}}
	for range count {
		w.rec.Record(lat)
	}
	w.ops = uint64(count)
	w.items = uint64(count) * 10
	return w
}

func TestNewReportMergesWorkers(t *testing.T) {
	a := newTestWorker(time.Millisecond, 900)
	b := newTestWorker(20*time.Millisecond, 100)
	a.failed[codes.Unavailable] = 3
	b.failed[codes.Unavailable] = 2
	b.failed[codes.DeadlineExceeded] = 1
	a.itemErrs[int32(codes.InvalidArgument)] = 4
	b.itemErrs[missingResult] = 1
	b.mismatch = 2
	o, err := Options{Op: OpTokenizeBatch, Concurrency: 2, Batch: 10, Duration: 2 * time.Second, Seed: 9}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := newReport(o, 3, []*worker{a, b}, 2*time.Second)

	if r.Ops != 1000 || r.Items != 10000 {
		t.Errorf("ops %d items %d, want 1000 and 10000", r.Ops, r.Items)
	}
	if r.OpsPerSec != 500 || r.ItemsPerSec != 5000 {
		t.Errorf("rates %v %v, want 500 and 5000", r.OpsPerSec, r.ItemsPerSec)
	}
	wantErr := map[string]uint64{"Unavailable": 5, "DeadlineExceeded": 1}
	if !reflect.DeepEqual(r.Errors, wantErr) || r.Failed != 6 {
		t.Errorf("errors %v failed %d, want %v and 6", r.Errors, r.Failed, wantErr)
	}
	wantItem := map[string]uint64{"InvalidArgument": 4, "NoResult": 1}
	if !reflect.DeepEqual(r.ItemErrors, wantItem) || r.FailedItems != 5 {
		t.Errorf("item errors %v failed %d, want %v and 5", r.ItemErrors, r.FailedItems, wantItem)
	}
	if r.Mismatches != 2 {
		t.Errorf("mismatches %d, want 2", r.Mismatches)
	}
	l := r.Latency
	if l.Count != 1000 {
		t.Errorf("latency count %d, want 1000", l.Count)
	}
	// 90% of the calls took 1 ms, 10% 20 ms: p50 and p90 are 1 ms, p99 20 ms.
	if !approx(l.P50, time.Millisecond) || !approx(l.P90, time.Millisecond) || !approx(l.P99, 20*time.Millisecond) || !approx(l.Max, 20*time.Millisecond) {
		t.Errorf("percentiles %+v", l)
	}
	if r.Scheme != "pan" || r.Key != "" || r.Batch != 10 || r.Targets != 3 || r.Seed != 9 {
		t.Errorf("header %+v", r)
	}
}

func approx(got, want time.Duration) bool {
	d := got - want
	return d >= -want/500 && d <= want/500
}

func sampleReport() *Report {
	return &Report{
		Op: OpTokenizeBatch, Scheme: "pan", Concurrency: 64, Batch: 100, Targets: 3, Seed: 12345,
		Warmup: 2 * time.Second, Duration: 10 * time.Second, Elapsed: 10250 * time.Millisecond,
		Ops: 1500, Items: 149990, OpsPerSec: 146.3414634, ItemsPerSec: 14633.17,
		Latency: latency.Summary{Count: 1500, Min: 900 * time.Microsecond, Mean: 4300 * time.Microsecond,
			P50: 4100 * time.Microsecond, P90: 6 * time.Millisecond, P99: 9500 * time.Microsecond,
			P999: 12 * time.Millisecond, Max: 13 * time.Millisecond},
		Failed: 2, Errors: map[string]uint64{"Unavailable": 2},
		FailedItems: 10, ItemErrors: map[string]uint64{"InvalidArgument": 10},
	}
}

func TestReportJSONRoundTrip(t *testing.T) {
	r := sampleReport()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"op": "tokenize-batch", "ops_per_sec": 146.3414634, "items_per_sec": 14633.17, "elapsed_s": 10.25,
		"failed": 2.0, "batch": 100.0, "seed": 12345.0,
	} {
		if fields[k] != want {
			t.Errorf("json %q = %v, want %v", k, fields[k], want)
		}
	}
	lat, _ := fields["latency_us"].(map[string]any)
	if lat["p50"] != 4100.0 || lat["p99_9"] != 12000.0 || lat["max"] != 13000.0 {
		t.Errorf("latency_us %v", lat)
	}
	if _, ok := fields["key"]; ok {
		t.Errorf("empty key marshalled: %s", b)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, *r)
	}
	byValue, err := json.Marshal(*r)
	if err != nil || !bytes.Equal(byValue, b) {
		t.Errorf("a Report value marshals differently from a pointer: %s", byValue)
	}
}

func TestReportJSONEmptyMaps(t *testing.T) {
	b, err := json.Marshal(&Report{Op: OpSign, Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"errors":{}`)) || !bytes.Contains(b, []byte(`"item_errors":{}`)) {
		t.Errorf("empty error maps should marshal as {}: %s", b)
	}
}

func TestReportText(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"tokenize-batch (scheme pan, 100 per call)",
		"64 over 3 connection(s)",
		"10.25s after 2.0s warmup",
		"1,500 ok, 2 failed",
		"146 ops/s, 14,633 items/s",
		"p50 4.10ms  p90 6.00ms  p99 9.50ms  p99.9 12.0ms  max 13.0ms",
		"Unavailable 2",
		"InvalidArgument 10",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	// Columns are aligned: every value starts at the same offset.
	var col int
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k := strings.Index(line, "  ")
		v := k + len(line[k:]) - len(strings.TrimLeft(line[k:], " "))
		if i == 0 {
			col = v
		} else if v != col {
			t.Errorf("line %q: value at column %d, want %d", line, v, col)
		}
	}
}

func TestFmtLatency(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "-", 850 * time.Microsecond: "850µs", 1500 * time.Microsecond: "1.50ms",
		42 * time.Millisecond: "42.0ms", 2500 * time.Millisecond: "2.50s",
	} {
		if got := fmtLatency(d); got != want {
			t.Errorf("fmtLatency(%v) = %q, want %q", d, got, want)
		}
	}
}
