// Package latency records operation latencies in HDR histograms for the load
// generator and the raw-limit probes, so both report percentiles the same way.
//
// Each worker goroutine owns one Recorder and records into it without any
// lock; when the workers are done their recorders are merged into one. Values
// are kept in microseconds from 1 µs to 60 s with 3 significant digits (a
// reported percentile is within 0.1% of the true value). Values outside that
// range are clamped to it and counted as clamped, never dropped.
package latency

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Range and precision of every Recorder.
const (
	Lowest  = time.Microsecond
	Highest = 60 * time.Second
	SigFigs = 3
)

// Recorder is an HDR histogram of latencies. It is not safe for concurrent
// use: give each goroutine its own and Merge them afterwards.
type Recorder struct {
	h       *hdrhistogram.Histogram
	clamped int64
}

// New returns an empty Recorder.
func New() *Recorder {
	return &Recorder{h: hdrhistogram.New(int64(Lowest/time.Microsecond), int64(Highest/time.Microsecond), SigFigs)}
}

// Record adds one latency, clamped to [Lowest, Highest].
func (r *Recorder) Record(d time.Duration) {
	us := int64(d / time.Microsecond)
	switch {
	case us < 1:
		us = 1
	case us > int64(Highest/time.Microsecond):
		us = int64(Highest / time.Microsecond)
		r.clamped++
	}
	// In range by construction: RecordValue cannot fail.
	_ = r.h.RecordValue(us)
}

// Count returns how many latencies were recorded.
func (r *Recorder) Count() int64 { return r.h.TotalCount() }

// Clamped returns how many latencies exceeded Highest and were recorded as
// Highest.
func (r *Recorder) Clamped() int64 { return r.clamped }

// Merge adds every value of other into r. other is not modified. Both have
// the same range, so nothing is dropped.
func (r *Recorder) Merge(other *Recorder) {
	if other == nil {
		return
	}
	r.h.Merge(other.h)
	r.clamped += other.clamped
}

// Merged returns a new Recorder holding the values of all rs (nil entries
// are skipped).
func Merged(rs ...*Recorder) *Recorder {
	out := New()
	for _, r := range rs {
		out.Merge(r)
	}
	return out
}

// Summary is the percentile summary of a Recorder. A plain value, safe for
// concurrent use.
type Summary struct {
	Count int64
	Min   time.Duration
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P99   time.Duration
	P999  time.Duration
	Max   time.Duration
}

// Summary computes the percentiles. An empty Recorder gives a zero Summary.
// Percentiles and Max are the highest value equivalent to the recorded ones
// (HDR semantics), so P50 <= P90 <= P99 <= P999 <= Max always holds.
func (r *Recorder) Summary() Summary {
	if r.h.TotalCount() == 0 {
		return Summary{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Summary{
		Count: r.h.TotalCount(),
		Min:   us(r.h.Min()),
		Mean:  time.Duration(r.h.Mean() * float64(time.Microsecond)),
		P50:   us(r.h.ValueAtPercentile(50)),
		P90:   us(r.h.ValueAtPercentile(90)),
		P99:   us(r.h.ValueAtPercentile(99)),
		P999:  us(r.h.ValueAtPercentile(99.9)),
		Max:   us(r.h.Max()),
	}
}
