package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// MicroMetric is one value of a Go benchmark line ("ns/op", "B/op",
// "allocs/op" or a custom b.ReportMetric unit).
type MicroMetric struct {
	Unit  string
	Value float64
}

// MicroResult is one Go benchmark, its metrics being the median over the
// runs (`-count`) found. A plain value.
type MicroResult struct {
	Package string
	Name    string // without the -GOMAXPROCS suffix
	Runs    int
	Metrics []MicroMetric
}

// ParseGoBench reads `go test -bench` output (several packages, -count N)
// and returns one result per package and benchmark, in order of first
// appearance, each metric the median of its runs. Lines that are not
// benchmark results are skipped; a result line that does not parse is an
// error naming its line number.
func ParseGoBench(r io.Reader) ([]MicroResult, error) {
	type key struct{ pkg, name string }
	var order []key
	runs := map[key][]map[string]float64{}
	units := map[key][]string{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if p, ok := strings.CutPrefix(text, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(text)
		// A result: name, iterations, then value-unit pairs.
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseUint(f[1], 10, 64); err != nil {
			continue // "BenchmarkX" printed by a benchmark's log, not a result
		}
		k := key{pkg, trimProcs(f[0])}
		vals := map[string]float64{}
		for i := 2; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%w: go bench line %d: value %q", ErrInvalidOptions, line, f[i])
			}
			vals[f[i+1]] = v
			if !slices.Contains(units[k], f[i+1]) {
				units[k] = append(units[k], f[i+1])
			}
		}
		if _, seen := runs[k]; !seen {
			order = append(order, k)
		}
		runs[k] = append(runs[k], vals)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := make([]MicroResult, 0, len(order))
	for _, k := range order {
		m := MicroResult{Package: k.pkg, Name: k.name, Runs: len(runs[k])}
		for _, u := range units[k] {
			var vs []float64
			for _, run := range runs[k] {
				if v, ok := run[u]; ok {
					vs = append(vs, v)
				}
			}
			m.Metrics = append(m.Metrics, MicroMetric{Unit: u, Value: median(vs)})
		}
		out = append(out, m)
	}
	return out, nil
}

// trimProcs removes the "-N" GOMAXPROCS suffix of a benchmark name.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
