package vault

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/audit"
	"github.com/panvault/panvault/vault/pki"
)

// Config wires a Node to its HSM, its replicated store and its authorization
// configuration. HSM, Store and Authorizer are required; the Node does not
// own them (Close leaves them open: the caller closes the store, then the HSM).
// A plain value, read once by New.
type Config struct {
	// NodeID names the node in logs; defaults to the store's id.
	NodeID string
	// HSM holds this node's master key; every working key is loaded into it.
	HSM *keys.HSM
	// Store is this node's raftstore member.
	Store *raftstore.Store
	// Authorizer maps certificate identities to roles (gRPC edge).
	Authorizer *pki.Authorizer
	// Logger receives the node's logs; nil means slog.Default(). Logs never
	// contain a PAN (masked forms only), a token in clear or key material.
	Logger *slog.Logger
	// Now is the clock for token creation and expiry; nil means time.Now.
	// Tests inject a clock to test TTL expiry.
	Now func() time.Time
	// Audit is the node's audit log (auditcall.go): detokenize, sign and
	// administrative calls are recorded there before they are answered.
	// Required for a production node; nil disables the audit trail (tests
	// of other things), which New logs as a warning.
	Audit *audit.Log

	// ReencryptRate caps the re-encryption job in token records per second
	// (0: DefaultReencryptRate); ReencryptBatch is its batch size (0:
	// DefaultReencryptBatch, at most raftstore.MaxScanLimit).
	ReencryptRate  int
	ReencryptBatch int
	// ReencryptGrace is how long a re-encryption job waits after it was
	// started before it scans (0: DefaultReencryptGrace; negative: no wait,
	// for tests without concurrent tokenization). See reencrypt.go.
	ReencryptGrace time.Duration
	// JobInterval is how often the leader looks for ceremony expiries,
	// approved ceremonies to carry out and re-encryption work (0:
	// DefaultJobInterval).
	JobInterval time.Duration
	// CryptoperiodCheck is how often cryptoperiods are checked (0:
	// DefaultCryptoperiodCheck).
	CryptoperiodCheck time.Duration
	// IdemRetention is how long idempotency records are kept (0:
	// DefaultIdemRetention); SweepBatch how many records of each bucket
	// the expiry sweep looks at per JobInterval (0: DefaultSweepBatch, at
	// most raftstore.MaxScanLimit). See expirysweep.go.
	IdemRetention time.Duration
	SweepBatch    int
	// AuditAnchorInterval is how often the node records the head of its
	// audit log through Raft when it grew (0: DefaultAuditAnchorInterval;
	// auditanchor.go).
	AuditAnchorInterval time.Duration
	// MaxStaleness bounds STALE reads: a node that has not heard from the
	// leader for longer refuses them (0: DefaultMaxStaleness; staleness.go).
	MaxStaleness time.Duration
}

// withDefaults fills the zero fields of the job settings.
func (c Config) withDefaults() Config {
	if c.ReencryptRate <= 0 {
		c.ReencryptRate = DefaultReencryptRate
	}
	if c.ReencryptBatch <= 0 {
		c.ReencryptBatch = DefaultReencryptBatch
	}
	if c.ReencryptBatch > raftstore.MaxScanLimit {
		c.ReencryptBatch = raftstore.MaxScanLimit
	}
	switch {
	case c.ReencryptGrace == 0:
		c.ReencryptGrace = DefaultReencryptGrace
	case c.ReencryptGrace < 0:
		c.ReencryptGrace = 0
	}
	if c.JobInterval <= 0 {
		c.JobInterval = DefaultJobInterval
	}
	if c.CryptoperiodCheck <= 0 {
		c.CryptoperiodCheck = DefaultCryptoperiodCheck
	}
	if c.MaxStaleness <= 0 {
		c.MaxStaleness = DefaultMaxStaleness
	}
	if c.AuditAnchorInterval <= 0 {
		c.AuditAnchorInterval = DefaultAuditAnchorInterval
	}
	if c.IdemRetention <= 0 {
		c.IdemRetention = DefaultIdemRetention
	}
	if c.SweepBatch <= 0 {
		c.SweepBatch = DefaultSweepBatch
	}
	if c.SweepBatch > raftstore.MaxScanLimit {
		c.SweepBatch = raftstore.MaxScanLimit
	}
	return c
}

// Node is the vault on one cluster member: schemes, keys and tokens over the
// replicated store, every secret operation in the local HSM. Any node serves
// every request; writes are forwarded to the Raft leader by raftstore.
//
// A Node is safe for concurrent use. Close stops its background work.
type Node struct {
	id    string
	hsm   *keys.HSM
	store *raftstore.Store
	authz *pki.Authorizer
	audit *audit.Log // nil: no audit trail (tests)
	log   *slog.Logger
	now   func() time.Time
	cfg   Config // job settings, with defaults

	keyring *keyring
	reenc   *reencryptor
	metrics *keyMetrics
	// execMu serialises ceremony executions on this node: two of them
	// generating the same key version in this HSM would replace each
	// other's object.
	execMu  sync.Mutex
	schemes *schemeCache
	ff1     *ff1Registry

	// ctx lives as long as the node; background work and the FF1 block
	// ciphers (which wait on HSM sessions) use it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once

	// anchors and anchorFailures count audit anchor proposals
	// (auditanchor.go) that were committed and that failed.
	anchors, anchorFailures atomic.Uint64

	// sweepPaused stops the expiry sweep (tests pause it to observe
	// expired records before they are removed).
	sweepPaused atomic.Bool
}

// New starts a vault node: it subscribes to the replicated key bucket, loads
// every key version found in the local state into the HSM, and keeps loading
// new ones as they replicate. It returns once the keys of the local state
// are loaded (a key that fails to load, for example because it was wrapped
// under another master key, is logged and reported per request; it does not
// fail New).
func New(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.HSM == nil || cfg.Store == nil || cfg.Authorizer == nil {
		return nil, fmt.Errorf("%w: HSM, Store and Authorizer are required", ErrInvalidConfig)
	}
	n := &Node{
		id:    cfg.NodeID,
		hsm:   cfg.HSM,
		store: cfg.Store,
		authz: cfg.Authorizer,
		audit: cfg.Audit,
		log:   cfg.Logger,
		now:   cfg.Now,
		cfg:   cfg.withDefaults(),
	}
	if n.id == "" {
		n.id = cfg.Store.ID()
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	n.log = n.log.With("node", n.id)
	if n.audit == nil {
		n.log.Warn("no audit log: detokenize, sign and administrative calls are not recorded")
	}
	if n.now == nil {
		n.now = time.Now
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.schemes = newSchemeCache(n)
	n.ff1 = newFF1Registry(n)
	n.keyring = newKeyring(n)
	n.metrics = newKeyMetrics()
	n.reenc = newReencryptor(n)
	if err := n.useReplicatedMasterKey(ctx); err != nil {
		n.cancel()
		return nil, err
	}
	n.schemes.start()
	if err := n.keyring.start(ctx); err != nil {
		n.cancel()
		n.schemes.stop()
		n.wg.Wait()
		return nil, err
	}
	if _, ok := n.hsm.MasterKeyKCV(); !ok {
		n.log.Error("hsm has no master key: no working key can be loaded until one is", "token", n.hsm.Token().Label)
	}
	n.wg.Add(5)
	go n.runExpirySweep()
	go n.followMasterKey()
	go n.reenc.run()
	go n.runCryptoperiods()
	go n.runCeremonySweep()
	if n.audit != nil {
		n.wg.Add(1)
		go n.runAuditAnchors()
	}
	return n, nil
}

// ID returns the node's id.
func (n *Node) ID() string { return n.id }

// Store returns the node's raftstore member.
func (n *Node) Store() *raftstore.Store { return n.store }

// Close stops the key loader and the FF1 batchers. Requests in flight may
// fail with ErrClosed. It does not close the store or the HSM. Idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		n.keyring.stop()
		n.schemes.stop()
		n.ff1.stop()
		n.wg.Wait()
	})
	return nil
}

// closed reports whether Close was called.
func (n *Node) closed() bool { return n.ctx.Err() != nil }
