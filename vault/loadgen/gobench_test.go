package loadgen

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const benchOut = `goos: linux
goarch: amd64
pkg: github.com/panvault/panvault/keys
cpu: Some CPU
BenchmarkSealGCM128/pool-2         	  100000	     12000 ns/op	     320 B/op	       6 allocs/op
BenchmarkSealGCM128/pool-2         	  100000	     10000 ns/op	     320 B/op	       6 allocs/op
BenchmarkSealGCM128/pool-2         	  100000	     11000 ns/op	     320 B/op	       6 allocs/op
BenchmarkECB                       	    5000	      8000 ns/op
PASS
ok  	github.com/panvault/panvault/keys	12.3s
pkg: github.com/panvault/panvault/raftstore
BenchmarkRawRaftApply/conc=64-2    	   20000	     50000 ns/op	     20000 cmds/s
BenchmarkRawRaftApply/conc=64-2    	   20000	     40000 ns/op	     25000 cmds/s
BenchmarkSealGCM128/pool-2 this line was logged by a benchmark
ok  	github.com/panvault/panvault/raftstore	30.1s
`

func TestParseGoBench(t *testing.T) {
	got, err := ParseGoBench(strings.NewReader(benchOut))
	if err != nil {
		t.Fatal(err)
	}
	want := []MicroResult{
		{Package: "github.com/panvault/panvault/keys", Name: "BenchmarkSealGCM128/pool", Runs: 3,
			Metrics: []MicroMetric{{"ns/op", 11000}, {"B/op", 320}, {"allocs/op", 6}}},
		{Package: "github.com/panvault/panvault/keys", Name: "BenchmarkECB", Runs: 1,
			Metrics: []MicroMetric{{"ns/op", 8000}}},
		{Package: "github.com/panvault/panvault/raftstore", Name: "BenchmarkRawRaftApply/conc=64", Runs: 2,
			Metrics: []MicroMetric{{"ns/op", 45000}, {"cmds/s", 22500}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseGoBenchBadValue(t *testing.T) {
	_, err := ParseGoBench(strings.NewReader("pkg: x\nBenchmarkA-2 10 abc ns/op\n"))
	if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("err %v, want a parse error naming line 2", err)
	}
}
