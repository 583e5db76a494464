package loadgen

import (
	"fmt"
	"strings"
	"time"
)

// WorkloadResult is the outcome of one matrix row. A plain value.
type WorkloadResult struct {
	Workload Workload
	// Report is nil when the workload could not run.
	Report *Report
	// Extra holds metrics the driver measured outside Run (MetricMaxRSS).
	Extra map[Metric]float64
	// Err says why the workload did not run or was cut short (no PAN in it).
	Err error
}

// Value returns the result's value of m in base units, and whether it is known.
func (r WorkloadResult) Value(m Metric) (float64, bool) {
	if v, ok := r.Extra[m]; ok {
		return v, true
	}
	if r.Report == nil || r.Report.Ops == 0 {
		return 0, false
	}
	switch m {
	case MetricOpsPerSec:
		return r.Report.OpsPerSec, true
	case MetricItemsPerSec:
		return r.Report.ItemsPerSec, true
	case MetricP50:
		return r.Report.Latency.P50.Seconds(), true
	case MetricP99:
		return r.Report.Latency.P99.Seconds(), true
	}
	return 0, false
}

// Results is everything one benchmark run measured, for WriteMarkdown.
type Results struct {
	// Date is when the run started.
	Date time.Time
	// Command is what produced the results ("make bench").
	Command string
	// Machine describes where it ran ("2 CPUs, linux/amd64, go1.26").
	Machine string
	// Notes are printed under the heading, one paragraph each (for
	// example "the machine was shared; figures are noisy").
	Notes     []string
	Workloads []WorkloadResult
	Raw       []RawLimit
	Micro     []MicroResult
	// MicroCommand is the command that produced Micro.
	MicroCommand string
}

// rawValue looks a raw limit up by name.
func (res *Results) rawValue(name string) (RawLimit, bool) {
	for _, r := range res.Raw {
		if r.Name == name {
			return r, true
		}
	}
	return RawLimit{}, false
}

// workload looks a workload result up by id.
func (res *Results) workload(id string) (WorkloadResult, bool) {
	for _, w := range res.Workloads {
		if w.Workload.ID == id {
			return w, true
		}
	}
	return WorkloadResult{}, false
}

// RawLimitOf computes a workload's raw limit: the smallest scaled term of a
// throughput, the sum of the terms of a latency. ok is false when a term's
// raw limit was not measured.
func (res *Results) RawLimitOf(w Workload) (value float64, ok bool) {
	if len(w.Raw.Terms) == 0 {
		return 0, false
	}
	for i, t := range w.Raw.Terms {
		r, found := res.rawValue(t.Name)
		if !found || r.Value <= 0 {
			return 0, false
		}
		v := r.Value * t.Scale
		switch {
		case w.Metric.IsLatency():
			value += v
		case i == 0 || v < value:
			value = v
		}
	}
	return value, true
}

// Verdict is a target's outcome.
type Verdict int

const (
	Unknown Verdict = iota // not measured, or its reference was not
	Met
	Missed
)

// Threshold computes a target's threshold in base units.
func (res *Results) Threshold(t Target) (float64, bool) {
	kind, name, found := strings.Cut(t.Of, ":")
	switch {
	case t.Of == "":
		return t.Value, true
	case !found:
		return 0, false
	case kind == "raw":
		r, ok := res.rawValue(name)
		if !ok || r.Value <= 0 {
			return 0, false
		}
		return t.Value * r.Value, true
	case kind == "workload":
		w, ok := res.workload(name)
		if !ok {
			return 0, false
		}
		v, ok := w.Value(t.Metric)
		return t.Value * v, ok
	}
	return 0, false
}

// Check evaluates target t against result r.
func (res *Results) Check(r WorkloadResult, t Target) Verdict {
	v, ok := r.Value(t.Metric)
	if !ok {
		return Unknown
	}
	th, ok := res.Threshold(t)
	if !ok {
		return Unknown
	}
	if (t.Cmp == AtLeast && v >= th) || (t.Cmp == AtMost && v <= th) {
		return Met
	}
	return Missed
}

// Validate checks that every reference of the matrix resolves to a workload
// of the matrix or to a raw limit name the results carry, so that a typo in
// the matrix shows up before a ten-minute run, not as "unknown" after it.
func Validate(matrix []Workload, rawNames []string) error {
	ids := map[string]bool{}
	for _, w := range matrix {
		if w.ID == "" || ids[w.ID] {
			return fmt.Errorf("%w: workload id %q empty or repeated", ErrMatrix, w.ID)
		}
		ids[w.ID] = true
		if _, err := w.Options.withDefaults(); err != nil {
			return fmt.Errorf("%w: workload %s: %w", ErrMatrix, w.ID, err)
		}
	}
	raw := map[string]bool{}
	for _, n := range rawNames {
		raw[n] = true
	}
	for _, w := range matrix {
		for _, t := range w.Raw.Terms {
			if !raw[t.Name] || t.Scale <= 0 {
				return fmt.Errorf("%w: workload %s: raw term %q unknown or scale %v", ErrMatrix, w.ID, t.Name, t.Scale)
			}
		}
		for _, t := range w.Targets {
			kind, name, _ := strings.Cut(t.Of, ":")
			switch {
			case t.Of == "":
			case kind == "raw" && raw[name]:
			case kind == "workload" && ids[name] && name != w.ID:
			default:
				return fmt.Errorf("%w: workload %s: target reference %q unknown", ErrMatrix, w.ID, t.Of)
			}
		}
	}
	return nil
}
