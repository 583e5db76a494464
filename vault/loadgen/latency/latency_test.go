package latency

import (
	"math"
	"testing"
	"time"
)

// within reports whether got is within 0.1% (3 significant digits) of want.
func within(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= 0.001*float64(want)+float64(time.Microsecond)
}

func TestPercentilesOfKnownDistribution(t *testing.T) {
	r := New()
	for i := 1; i <= 10000; i++ {
		r.Record(time.Duration(i) * time.Microsecond)
	}
	s := r.Summary()
	if s.Count != 10000 {
		t.Fatalf("count %d, want 10000", s.Count)
	}
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"min", s.Min, time.Microsecond},
		{"p50", s.P50, 5000 * time.Microsecond},
		{"p90", s.P90, 9000 * time.Microsecond},
		{"p99", s.P99, 9900 * time.Microsecond},
		{"p99.9", s.P999, 9990 * time.Microsecond},
		{"max", s.Max, 10000 * time.Microsecond},
		{"mean", s.Mean, 5000 * time.Microsecond},
	} {
		if !within(c.got, c.want) {
			t.Errorf("%s = %v, want %v ±0.1%%", c.name, c.got, c.want)
		}
	}
	if !(s.P50 <= s.P90 && s.P90 <= s.P99 && s.P99 <= s.P999 && s.P999 <= s.Max) {
		t.Errorf("percentiles not ordered: %+v", s)
	}
}

// Merging per-worker recorders must give exactly what one recorder fed with
// every value gives.
func TestMergeEqualsSingleRecorder(t *testing.T) {
	all := New()
	workers := []*Recorder{New(), New(), New(), New()}
	for i := range 40000 {
		d := time.Duration((i*7919)%250000+1) * time.Microsecond
		all.Record(d)
		workers[i%len(workers)].Record(d)
	}
	merged := Merged(append(workers, nil)...)
	if merged.Summary() != all.Summary() {
		t.Fatalf("merged %+v, single %+v", merged.Summary(), all.Summary())
	}
	for i, w := range workers {
		if w.Count() != 10000 {
			t.Errorf("worker %d modified by merge: count %d", i, w.Count())
		}
	}
}

func TestClampsOutOfRange(t *testing.T) {
	r := New()
	r.Record(0)
	r.Record(200 * time.Nanosecond)
	r.Record(2 * time.Minute)
	s := r.Summary()
	if s.Count != 3 || r.Clamped() != 1 {
		t.Fatalf("count %d clamped %d, want 3 and 1", s.Count, r.Clamped())
	}
	if s.Min != Lowest {
		t.Errorf("min %v, want %v", s.Min, Lowest)
	}
	if !within(s.Max, Highest) {
		t.Errorf("max %v, want about %v", s.Max, Highest)
	}
	m := Merged(r, r)
	if m.Clamped() != 2 || m.Count() != 6 {
		t.Errorf("merged clamped %d count %d, want 2 and 6", m.Clamped(), m.Count())
	}
}

func TestEmptySummary(t *testing.T) {
	if s := New().Summary(); s != (Summary{}) {
		t.Fatalf("empty recorder summary %+v", s)
	}
}
