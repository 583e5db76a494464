package vault

import (
	"sort"
	"sync"

	"github.com/panvault/panvault/keys"
)

// keyMetrics counts what key versions and their jobs do on this node, for
// the Prometheus collector (metrics.go). Labels are key names (never secret). Safe for concurrent
// use.
type keyMetrics struct {
	mu          sync.Mutex
	reenc       map[string]uint64 // records re-encrypted by this node, per key
	cpElapsed   map[string]bool   // cryptoperiod elapsed, per key
	warned      map[keys.KeyRef]bool
	ceremonies  map[string]uint64 // ceremony steps committed by this node, per entry type
	retokenized uint64
	cpChecks    uint64 // cryptoperiod checks run
}

func newKeyMetrics() *keyMetrics {
	return &keyMetrics{
		reenc:      make(map[string]uint64),
		cpElapsed:  make(map[string]bool),
		warned:     make(map[keys.KeyRef]bool),
		ceremonies: make(map[string]uint64),
	}
}

func (m *keyMetrics) reencrypted(key string, n int) {
	m.mu.Lock()
	m.reenc[key] += uint64(n)
	m.mu.Unlock()
}

func (m *keyMetrics) setCryptoperiodElapsed(key string, elapsed bool) {
	m.mu.Lock()
	m.cpElapsed[key] = elapsed
	m.mu.Unlock()
}

// warnOnce reports whether ref's elapsed cryptoperiod has not been logged
// yet, and marks it logged.
func (m *keyMetrics) warnOnce(ref keys.KeyRef) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.warned[ref] {
		return false
	}
	m.warned[ref] = true
	return true
}

func (m *keyMetrics) ceremonyStep(typ string) {
	m.mu.Lock()
	m.ceremonies[typ]++
	m.mu.Unlock()
}

func (m *keyMetrics) addRetokenized(n int) {
	m.mu.Lock()
	m.retokenized += uint64(n)
	m.mu.Unlock()
}

// KeyMetrics is a snapshot of the node's key-lifecycle metrics. A plain
// value.
type KeyMetrics struct {
	// Reencrypted: token records re-encrypted by this node, per key.
	Reencrypted map[string]uint64
	// CryptoperiodElapsed: per key, whether its latest version's
	// cryptoperiod has elapsed.
	CryptoperiodElapsed map[string]bool
	// CeremonySteps: ceremony log entries this node committed, per type.
	CeremonySteps map[string]uint64
	// Retokenized: FF1 tokens migrated by this node.
	Retokenized uint64
	// CryptoperiodChecks: how many cryptoperiod checks this node has run.
	CryptoperiodChecks uint64
}

// KeyMetrics returns a snapshot of the node's key-lifecycle metrics.
func (n *Node) KeyMetrics() KeyMetrics {
	m := n.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	out := KeyMetrics{
		Reencrypted:         make(map[string]uint64, len(m.reenc)),
		CryptoperiodElapsed: make(map[string]bool, len(m.cpElapsed)),
		CeremonySteps:       make(map[string]uint64, len(m.ceremonies)),
		Retokenized:         m.retokenized,
		CryptoperiodChecks:  m.cpChecks,
	}
	for k, v := range m.reenc {
		out.Reencrypted[k] = v
	}
	for k, v := range m.cpElapsed {
		out.CryptoperiodElapsed[k] = v
	}
	for k, v := range m.ceremonies {
		out.CeremonySteps[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
