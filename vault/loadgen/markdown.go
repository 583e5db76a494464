package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteMarkdown writes BENCHMARKS.md: the cluster workloads (result, targets,
// raw limit, ratio to it, command), the raw limits and the Go
// micro-benchmarks of one run.
func WriteMarkdown(w io.Writer, res Results) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("# panvault benchmarks\n\n")
	p("Generated")
	if res.Command != "" {
		p(" by `%s`", res.Command)
	}
	if !res.Date.IsZero() {
		p(" on %s", res.Date.UTC().Format("2006-01-02 15:04 MST"))
	}
	if res.Machine != "" {
		p(" (%s)", res.Machine)
	}
	p(". Every figure below comes from that one run, raw limits included, so the ratios compare like with like.\n\n")
	for _, n := range res.Notes {
		p("%s\n\n", n)
	}

	if len(res.Workloads) > 0 {
		p("## Cluster workloads\n\n")
		p("Ratio is the result divided by the raw limit of what the workload is built on " +
			"(throughput: the smallest scaled raw rate; latency: the sum of the raw latencies on its path).\n\n")
		p("| Workload | Result | Target | Raw limit | Ratio | Command |\n")
		p("| --- | --- | --- | --- | --- | --- |\n")
		for _, wr := range res.Workloads {
			p("| %s | %s | %s | %s | %s | `%s` |\n", cell(wr.Workload.Title), cell(resultCell(wr)),
				cell(targetsCell(&res, wr)), cell(rawCell(&res, wr.Workload)), ratioCell(&res, wr), wr.Workload.Command())
		}
		p("\n")
	}

	if len(res.Raw) > 0 {
		p("## Raw limits\n\n")
		p("| Limit | Value | What | Command |\n| --- | --- | --- | --- |\n")
		for _, r := range res.Raw {
			p("| %s | %s | %s | `%s` |\n", r.Name, fmtRaw(r), cell(r.Detail), r.Command)
		}
		p("\n")
	}

	if len(res.Micro) > 0 {
		p("## Go micro-benchmarks\n\n")
		if res.MicroCommand != "" {
			p("`%s` (median of the runs of each benchmark)\n\n", res.MicroCommand)
		}
		for _, n := range MicroNotes(res.Micro) {
			p("%s\n\n", n)
		}
		p("All micro-benchmarks:\n\n")
		p("| Package | Benchmark | Runs | Metrics |\n| --- | --- | --- | --- |\n")
		for _, m := range res.Micro {
			var ms []string
			for _, v := range m.Metrics {
				ms = append(ms, fmt.Sprintf("%s %s", fmtNumber(v.Value), v.Unit))
			}
			p("| %s | %s | %d | %s |\n", m.Package, cell(m.Name), m.Runs, cell(strings.Join(ms, ", ")))
		}
		p("\n")
	}
	return bw.Flush()
}

// cell escapes a table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func resultCell(wr WorkloadResult) string {
	r := wr.Report
	if r == nil {
		if wr.Err != nil {
			return "not run: " + wr.Err.Error()
		}
		return "not run"
	}
	var parts []string
	if v, ok := wr.Value(wr.Workload.Metric); ok {
		parts = append(parts, fmtMetric(wr.Workload.Metric, v))
	}
	if wr.Workload.Metric != MetricOpsPerSec && r.Ops > 0 {
		parts = append(parts, fmtMetric(MetricOpsPerSec, r.OpsPerSec))
	}
	if r.Ops > 0 {
		if wr.Workload.Metric != MetricP50 {
			parts = append(parts, "p50 "+fmtLatency(r.Latency.P50))
		}
		if wr.Workload.Metric != MetricP99 {
			parts = append(parts, "p99 "+fmtLatency(r.Latency.P99))
		}
		parts = append(parts, "max "+fmtLatency(r.Latency.Max))
	}
	if v, ok := wr.Extra[MetricMaxRSS]; ok && wr.Workload.Metric != MetricMaxRSS {
		s := "RSS " + fmtMetric(MetricMaxRSS, v)
		if a, ok := wr.Extra[MetricMaxAnonRSS]; ok {
			s += " (anonymous " + fmtMetric(MetricMaxRSS, a) + ")"
		}
		parts = append(parts, s)
	}
	if v, ok := wr.Extra[MetricNodeCPU]; ok {
		parts = append(parts, "node CPU "+fmtMetric(MetricNodeCPU, v))
	}
	if v, ok := wr.Extra[MetricClientCPU]; ok {
		parts = append(parts, "client CPU "+fmtMetric(MetricClientCPU, v))
	}
	if bad := r.Failed + r.FailedItems + r.Mismatches; bad > 0 {
		parts = append(parts, fmt.Sprintf("%s errors (%s)", groupDigits(bad), fmtCounts(mergeCounts(r))))
	}
	if r.Interrupted || wr.Err != nil {
		parts = append(parts, "incomplete")
	}
	return strings.Join(parts, " · ")
}

func mergeCounts(r *Report) map[string]uint64 {
	m := map[string]uint64{}
	for k, v := range r.Errors {
		m[k] += v
	}
	for k, v := range r.ItemErrors {
		m["item "+k] += v
	}
	if r.Mismatches > 0 {
		m["mismatch"] = r.Mismatches
	}
	return m
}

func targetsCell(res *Results, wr WorkloadResult) string {
	var parts []string
	for _, t := range wr.Workload.Targets {
		op := "≥"
		if t.Cmp == AtMost {
			op = "≤"
		}
		// Rates carry their unit in the value; latencies and memory are named.
		s := op
		if t.Metric.IsLatency() || t.Metric == MetricMaxRSS {
			s = string(t.Metric) + " " + op
		}
		if t.Of == "" {
			s += " " + fmtMetric(t.Metric, t.Value)
		} else {
			s += fmt.Sprintf(" %s × %s", fmtNumber(t.Value), strings.TrimPrefix(strings.TrimPrefix(t.Of, "raw:"), "workload:"))
			if th, ok := res.Threshold(t); ok {
				s += " = " + fmtMetric(t.Metric, th)
			}
		}
		switch res.Check(wr, t) {
		case Met:
			s += " ✓"
		case Missed:
			s += " ✗"
		default:
			s += " (not measured)"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func rawCell(res *Results, w Workload) string {
	v, ok := res.RawLimitOf(w)
	if !ok {
		return "-"
	}
	var names []string
	for _, t := range w.Raw.Terms {
		if t.Scale == 1 {
			names = append(names, t.Name)
		} else {
			names = append(names, fmt.Sprintf("%s × %s", t.Name, fmtNumber(t.Scale)))
		}
	}
	join := " min "
	if w.Metric.IsLatency() {
		join = " + "
	}
	s := fmtMetric(w.Metric, v) + " (" + strings.Join(names, join)
	if w.Raw.Note != "" {
		s += ": " + w.Raw.Note
	}
	return s + ")"
}

func ratioCell(res *Results, wr WorkloadResult) string {
	raw, ok := res.RawLimitOf(wr.Workload)
	if !ok || raw <= 0 {
		return "-"
	}
	v, ok := wr.Value(wr.Workload.Metric)
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/raw)
}

// fmtMetric prints a value of m in its unit.
func fmtMetric(m Metric, v float64) string {
	switch {
	case m.IsLatency():
		return fmtLatency(time.Duration(v * float64(time.Second)))
	case m == MetricMaxRSS || m == MetricMaxAnonRSS:
		return fmt.Sprintf("%.0f MiB", v/(1<<20))
	case m.isCPU():
		return fmtLatency(time.Duration(v*float64(time.Second))) + "/item"
	default:
		return fmt.Sprintf("%s %s", groupDigits(uint64(v+0.5)), m)
	}
}

func fmtRaw(r RawLimit) string {
	if r.IsLatency() {
		return fmtLatency(time.Duration(r.Value * float64(time.Second)))
	}
	return groupDigits(uint64(r.Value+0.5)) + "/s"
}

// fmtNumber prints a number compactly: integers with separators, others
// with up to 3 significant decimals.
func fmtNumber(v float64) string {
	if v == float64(uint64(v)) && v < 1e15 {
		return groupDigits(uint64(v))
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}
