package devcluster

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"
)

// Options configure Start. Dir and Binary are required. Options is a plain
// value; Start copies it.
type Options struct {
	// Dir holds the whole cluster (see the package doc). Created if missing.
	Dir string
	// Nodes is the number of nodes of a new cluster (default 3). For an
	// existing cluster 0 means "as it is"; another number is ErrMismatch.
	Nodes int
	// Binary is the panvault executable run for every node and setup step.
	Binary string
	// Components is the number of master-key components made for a new
	// cluster (default 2).
	Components int

	// Raft tuning written to every node's config (zero: server defaults).
	// Tests set them small to force snapshots.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// Group commit and HSM session pool written to every node's config
	// (zero: server defaults), for benchmarks that compare settings.
	MaxBatchCommands    int
	MaxInflightBatches  int
	StateCommitInterval time.Duration
	HSMPoolSize         int

	// Pprof gives every node a net/http/pprof listener on a free loopback
	// port (NodeInfo.PprofAddr), for profiling benchmarks. Off by default:
	// profiles reveal no secrets, but a debug listener is one more port.
	Pprof bool

	// NodeLogFormat is the nodes' log format, "json" (default) or "text";
	// NodeLogLevel their level (default "info").
	NodeLogFormat string
	NodeLogLevel  string

	// StartTimeout bounds waiting for nodes to become ready (default 90s).
	StartTimeout time.Duration
	// StopTimeout is how long a node may take to stop after SIGTERM before it
	// gets SIGKILL (default 15s).
	StopTimeout time.Duration

	// SkipProvision leaves out creating DefaultKeys and DefaultSchemes.
	SkipProvision bool

	// Log receives progress messages (default: discarded). Nothing logged
	// carries a PIN, component or PAN.
	Log *slog.Logger
}

func (o *Options) normalize() error {
	if o.Dir == "" {
		return fmt.Errorf("%w: Dir is required", ErrInvalidOptions)
	}
	if o.Binary == "" {
		return fmt.Errorf("%w: Binary is required", ErrInvalidOptions)
	}
	var err error
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return fmt.Errorf("%w: Dir: %w", ErrInvalidOptions, err)
	}
	if o.Binary, err = filepath.Abs(o.Binary); err != nil {
		return fmt.Errorf("%w: Binary: %w", ErrInvalidOptions, err)
	}
	if o.Nodes < 0 || o.Nodes > 15 {
		return fmt.Errorf("%w: Nodes must be from 1 to 15", ErrInvalidOptions)
	}
	if o.Components == 0 {
		o.Components = 2
	}
	if o.Components < 2 || o.Components > 16 {
		return fmt.Errorf("%w: Components must be from 2 to 16", ErrInvalidOptions)
	}
	switch o.NodeLogFormat {
	case "":
		o.NodeLogFormat = "json"
	case "json", "text":
	default:
		return fmt.Errorf("%w: NodeLogFormat must be json or text", ErrInvalidOptions)
	}
	if o.NodeLogLevel == "" {
		o.NodeLogLevel = "info"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 90 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 15 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}
