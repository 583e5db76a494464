package loadgen

import (
	"fmt"
	"github.com/panvault/panvault/vault"
	"io"
	"time"
)

// Op is a workload: which RPC the workers send.
type Op string

// The workloads.
const (
	// OpTokenize sends TokenService.Tokenize, one PAN per call (scheme "pan").
	OpTokenize Op = "tokenize"
	// OpTokenizeFF1 sends Tokenize to an FF1 scheme (scheme "pan-ff1").
	OpTokenizeFF1 Op = "tokenize-ff1"
	// OpTokenizeBatch sends TokenizeBatch with Options.Batch PANs per call
	// (scheme "pan"; set Scheme "pan-ff1" for batched FF1).
	OpTokenizeBatch Op = "tokenize-batch"
	// OpDetokenize tokenizes a pool of PANs during setup (not measured) and
	// then sends Detokenize for them, checking each answer.
	OpDetokenize Op = "detokenize"
	// OpSign sends SigningService.Sign with a 256-byte message (key
	// "payments-p256").
	OpSign Op = "sign"
)

// Ops lists every Op, for flag help and validation.
func Ops() []Op {
	return []Op{OpTokenize, OpTokenizeFF1, OpTokenizeBatch, OpDetokenize, OpSign}
}

// ParseOp returns the Op named s.
func ParseOp(s string) (Op, error) {
	for _, op := range Ops() {
		if string(op) == s {
			return op, nil
		}
	}
	return "", fmt.Errorf("%w: unknown op %q (want one of %v)", ErrInvalidOptions, s, Ops())
}

// Defaults of Options fields left zero.
const (
	DefaultScheme      = vault.DevSchemeVaulted
	DefaultFF1Scheme   = vault.DevSchemeFF1
	DefaultSigningKey  = vault.DevKeySigning
	DefaultConcurrency = 64
	DefaultDuration    = 10 * time.Second
	DefaultBatch       = 100
	DefaultPoolSize    = 10000
	DefaultTimeout     = 10 * time.Second
	// SignMessageSize is the size of the messages OpSign signs.
	SignMessageSize = 256
	// MaxBatch is the largest Batch accepted (the server's cap, see
	// vault.MaxBatchItems).
	MaxBatch = vault.MaxBatchItems
	// MaxConcurrency bounds Options.Concurrency.
	MaxConcurrency = 4096
)

// Options describe one load run. The zero value of every field but Op means
// its default. A plain value, safe to copy.
type Options struct {
	Op Op
	// Concurrency is the number of workers, each with one call in flight.
	// Workers are spread round-robin over the connections given to Run.
	Concurrency int
	// Duration is the measured time, after Warmup.
	Duration time.Duration
	// Warmup runs the same load before measuring; calls that start during
	// the warmup are not counted. Zero: no warmup.
	Warmup time.Duration
	// Batch is the number of PANs per TokenizeBatch call; ignored by the
	// other ops.
	Batch int
	// Scheme is the token scheme; default "pan", "pan-ff1" for OpTokenizeFF1.
	Scheme string
	// Key is the signing key of OpSign; default "payments-p256".
	Key string
	// Seed makes the PAN sequence reproducible; 0 picks a random seed,
	// reported in Report.Seed.
	Seed uint64
	// PoolSize is how many tokens OpDetokenize creates before measuring.
	PoolSize int
	// StaleReads makes OpDetokenize ask for stale (local) reads instead of
	// linearizable ones.
	StaleReads bool
	// Timeout bounds each call.
	Timeout time.Duration
	// Progress receives a live progress line while the run lasts; nil means
	// none. On a terminal the line is rewritten in place (\r); otherwise a
	// plain line is written every ProgressInterval.
	Progress io.Writer
	// ProgressInterval is how often progress is shown; default 1s on a
	// terminal and 5s otherwise.
	ProgressInterval time.Duration
}

// SchemeFor is the scheme a run of op uses when scheme is empty: the FF1
// dev scheme for OpTokenizeFF1, the vaulted one otherwise.
func SchemeFor(op Op, scheme string) string {
	switch {
	case scheme != "":
		return scheme
	case op == OpTokenizeFF1:
		return DefaultFF1Scheme
	}
	return DefaultScheme
}

// withDefaults validates o and fills in defaults.
func (o Options) withDefaults() (Options, error) {
	if _, err := ParseOp(string(o.Op)); err != nil {
		return o, err
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Concurrency < 1 || o.Concurrency > MaxConcurrency {
		return o, fmt.Errorf("%w: concurrency %d outside 1..%d", ErrInvalidOptions, o.Concurrency, MaxConcurrency)
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Duration < 0 || o.Warmup < 0 || o.Timeout < 0 || o.ProgressInterval < 0 {
		return o, fmt.Errorf("%w: negative duration", ErrInvalidOptions)
	}
	switch {
	case o.Op != OpTokenizeBatch:
		o.Batch = 1 // only batch calls carry several PANs
	case o.Batch == 0:
		o.Batch = DefaultBatch
	case o.Batch < 1 || o.Batch > MaxBatch:
		return o, fmt.Errorf("%w: batch %d outside 1..%d", ErrInvalidOptions, o.Batch, MaxBatch)
	}
	o.Scheme = SchemeFor(o.Op, o.Scheme)
	if o.Key == "" {
		o.Key = DefaultSigningKey
	}
	if o.PoolSize == 0 {
		o.PoolSize = DefaultPoolSize
	}
	if o.PoolSize < 1 || o.PoolSize > 10_000_000 {
		return o, fmt.Errorf("%w: pool size %d outside 1..10000000", ErrInvalidOptions, o.PoolSize)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return o, nil
}
