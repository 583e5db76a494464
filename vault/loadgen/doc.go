// Package loadgen is panvault's load generator and benchmark reporter: it
// drives a running cluster over its public gRPC API and says how fast it
// went, and it renders the benchmark matrix (cluster workloads next to the
// raw limits of what they are built on) as BENCHMARKS.md.
//
// Why a package of its own: `panvault bench`, `make bench` and tests must
// measure the same way, and a measurement spread over call sites drifts.
// The CLI only parses flags, dials the nodes and prints a Report.
//
// # How a run measures
//
// Run starts Options.Concurrency workers, each with one call in flight,
// spread round-robin over the given connections (one per node: followers
// forward writes to the leader, as real clients' writes would be). Setup (the
// detokenize pool) comes first and is not measured. Calls that start during
// the warmup are not counted; the measurement window closes at Warmup +
// Duration, calls in flight then are completed and counted, and rates divide
// by the time from the end of the warmup until the last call returned.
//
// Each worker records latencies of successful calls in its own HDR histogram
// (package latency: 1 µs to 60 s, 3 significant digits) and counts failures
// by gRPC code in its own maps, so no lock is taken per call; Run merges them
// when the workers are done. Progress counters are per-worker atomics read
// once per progress interval.
//
// # Test card numbers
//
// PANs come from PANs, a deterministic generator of Luhn-valid numbers over
// every brand the vault classifies: call n of worker w uses index
// n*Concurrency + w, so no two calls of a run send the same PAN, and the same
// seed reproduces the same sequence. They are synthetic, but to the vault
// they are PANs: nothing in this package logs or prints one, and errors carry
// gRPC codes only.
//
// # Matrix
//
// DefaultMatrix describes the workloads of issue #6 as data (operation,
// concurrency, batch, targets, and which raw limits each is compared with).
// Package rawlimits measures the raw limits; RunMatrix runs the workloads
// (prefilling where a workload asks, and collecting extra metrics such as
// node RSS through ProcessRSS); the driver (`panvault bench --matrix`) only
// starts clusters, hands Results to WriteMarkdown and adds the Go
// micro-benchmarks parsed by ParseGoBench.
//
// Options, Report, Workload, Results and the other result types are plain
// values (safe for concurrent reads). PANs is immutable and safe for
// concurrent use. Run and Prefill may be called concurrently.
package loadgen
