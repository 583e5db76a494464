package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/panvault/panvault/vault/loadgen/latency"
)

// Report is the outcome of one Run. It marshals to JSON (durations in
// seconds, latencies in microseconds, see reportJSON) and renders as a
// human-readable table (WriteText). A plain value: safe for concurrent reads.
type Report struct {
	Op          Op
	Scheme      string // the token scheme (empty for OpSign)
	Key         string // the signing key (OpSign only)
	Concurrency int
	Batch       int // PANs per call (1 except for OpTokenizeBatch)
	Targets     int // connections the workers were spread over
	Seed        uint64

	Warmup   time.Duration // asked for
	Duration time.Duration // asked for
	Elapsed  time.Duration // measured: end of warmup until the last call finished

	Ops         uint64 // successful calls
	Items       uint64 // successful items (PANs, tokens, signatures)
	OpsPerSec   float64
	ItemsPerSec float64
	Latency     latency.Summary // of the successful calls
	Clamped     uint64          // latencies above latency.Highest, recorded as it

	Failed      uint64            // calls that failed
	Errors      map[string]uint64 // failed calls by gRPC code name ("Unavailable")
	FailedItems uint64            // items refused inside successful batch calls
	ItemErrors  map[string]uint64 // those items by code name ("InvalidArgument")
	Mismatches  uint64            // detokenize answers with a PAN other than the one tokenized

	Interrupted bool // the run was cut short by its context
}

// latencyJSON is latency.Summary in microseconds.
type latencyJSON struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

// reportJSON is the JSON form of Report: stable snake_case names, durations
// in seconds and latencies in microseconds.
type reportJSON struct {
	Op          Op                `json:"op"`
	Scheme      string            `json:"scheme,omitempty"`
	Key         string            `json:"key,omitempty"`
	Concurrency int               `json:"concurrency"`
	Batch       int               `json:"batch"`
	Targets     int               `json:"targets"`
	Seed        uint64            `json:"seed"`
	WarmupS     float64           `json:"warmup_s"`
	DurationS   float64           `json:"duration_s"`
	ElapsedS    float64           `json:"elapsed_s"`
	Ops         uint64            `json:"ops"`
	Items       uint64            `json:"items"`
	OpsPerSec   float64           `json:"ops_per_sec"`
	ItemsPerSec float64           `json:"items_per_sec"`
	LatencyUS   latencyJSON       `json:"latency_us"`
	Clamped     uint64            `json:"latency_clamped,omitempty"`
	Failed      uint64            `json:"failed"`
	Errors      map[string]uint64 `json:"errors"`
	FailedItems uint64            `json:"failed_items"`
	ItemErrors  map[string]uint64 `json:"item_errors"`
	Mismatches  uint64            `json:"mismatches"`
	Interrupted bool              `json:"interrupted,omitempty"`
}

func toMicros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func fromMicros(us float64) time.Duration {
	return time.Duration(us*float64(time.Microsecond) + 0.5)
}
func fromSeconds(s float64) time.Duration { return time.Duration(s*float64(time.Second) + 0.5) }

// MarshalJSON encodes the report as reportJSON. It has a value receiver so
// that a Report value marshals the same way as a pointer.
func (r Report) MarshalJSON() ([]byte, error) {
	l := r.Latency
	return json.Marshal(reportJSON{
		Op: r.Op, Scheme: r.Scheme, Key: r.Key, Concurrency: r.Concurrency, Batch: r.Batch,
		Targets: r.Targets, Seed: r.Seed,
		WarmupS: r.Warmup.Seconds(), DurationS: r.Duration.Seconds(), ElapsedS: r.Elapsed.Seconds(),
		Ops: r.Ops, Items: r.Items, OpsPerSec: r.OpsPerSec, ItemsPerSec: r.ItemsPerSec,
		LatencyUS: latencyJSON{Count: l.Count, Min: toMicros(l.Min), Mean: toMicros(l.Mean),
			P50: toMicros(l.P50), P90: toMicros(l.P90), P99: toMicros(l.P99), P999: toMicros(l.P999), Max: toMicros(l.Max)},
		Clamped: r.Clamped, Failed: r.Failed, Errors: nonNil(r.Errors),
		FailedItems: r.FailedItems, ItemErrors: nonNil(r.ItemErrors), Mismatches: r.Mismatches,
		Interrupted: r.Interrupted,
	})
}

// UnmarshalJSON decodes what MarshalJSON wrote (for reports saved by
// `panvault bench --output json` and rendered later). Unknown fields are
// ignored, so older readers accept newer reports.
func (r *Report) UnmarshalJSON(b []byte) error {
	var j reportJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	l := j.LatencyUS
	*r = Report{
		Op: j.Op, Scheme: j.Scheme, Key: j.Key, Concurrency: j.Concurrency, Batch: j.Batch,
		Targets: j.Targets, Seed: j.Seed,
		Warmup: fromSeconds(j.WarmupS), Duration: fromSeconds(j.DurationS), Elapsed: fromSeconds(j.ElapsedS),
		Ops: j.Ops, Items: j.Items, OpsPerSec: j.OpsPerSec, ItemsPerSec: j.ItemsPerSec,
		Latency: latency.Summary{Count: l.Count, Min: fromMicros(l.Min), Mean: fromMicros(l.Mean),
			P50: fromMicros(l.P50), P90: fromMicros(l.P90), P99: fromMicros(l.P99), P999: fromMicros(l.P999), Max: fromMicros(l.Max)},
		Clamped: j.Clamped, Failed: j.Failed, Errors: nonNil(j.Errors),
		FailedItems: j.FailedItems, ItemErrors: nonNil(j.ItemErrors), Mismatches: j.Mismatches,
		Interrupted: j.Interrupted,
	}
	return nil
}

func nonNil(m map[string]uint64) map[string]uint64 {
	if m == nil {
		return map[string]uint64{}
	}
	return m
}

// WriteText renders the report as an aligned two-column table.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	what := r.Scheme
	label := "scheme"
	if r.Op == OpSign {
		what, label = r.Key, "key"
	}
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	if r.Batch > 1 {
		row("workload", "%s (%s %s, %d per call)", r.Op, label, what, r.Batch)
	} else {
		row("workload", "%s (%s %s)", r.Op, label, what)
	}
	row("clients", "%d over %d connection(s)", r.Concurrency, r.Targets)
	cut := ""
	if r.Interrupted {
		cut = " (interrupted)"
	}
	row("measured", "%.2fs after %.1fs warmup%s", r.Elapsed.Seconds(), r.Warmup.Seconds(), cut)
	row("calls", "%s ok, %s failed", groupDigits(r.Ops), groupDigits(r.Failed))
	row("throughput", "%s ops/s, %s items/s", groupDigits(uint64(r.OpsPerSec+0.5)), groupDigits(uint64(r.ItemsPerSec+0.5)))
	l := r.Latency
	row("latency", "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s", fmtLatency(l.P50), fmtLatency(l.P90), fmtLatency(l.P99), fmtLatency(l.P999), fmtLatency(l.Max))
	row("errors", "%s", fmtCounts(r.Errors))
	if r.Op == OpTokenizeBatch || r.FailedItems > 0 {
		row("item errors", "%s", fmtCounts(r.ItemErrors))
	}
	if r.Op == OpDetokenize || r.Mismatches > 0 {
		row("mismatches", "%s", groupDigits(r.Mismatches))
	}
	if r.Clamped > 0 {
		row("clamped", "%s latencies above %v", groupDigits(r.Clamped), latency.Highest)
	}
	row("seed", "%d", r.Seed)
	return tw.Flush()
}

// fmtLatency prints a latency with 3 significant digits in a fitting unit.
func fmtLatency(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", toMicros(d))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

// fmtCounts prints counts by name, sorted by name: "Unavailable 3, ...".
func fmtCounts(m map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", k, groupDigits(m[k])))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
