package vault

import (
	"fmt"
	"sort"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/scheme"
	"github.com/panvault/panvault/vault/vaultpb"
)

// Cryptoperiods (PCI DSS 3.6.4, NIST SP 800-57 part 1 §5.3): each key says
// how long a version may encrypt or sign before it must be rotated. When the
// latest version's cryptoperiod has elapsed the vault warns (a log line once
// per key version on each node, and the gauge
// panvault_key_cryptoperiod_elapsed{key}) but keeps serving: an overdue
// rotation is an operational finding, never an outage.

// Default cryptoperiods: one year for keys that protect card data
// (originator-usage period of a symmetric data-encryption key), two years
// for signing keys.
const (
	DefaultDataCryptoperiod    = 365 * 24 * time.Hour
	DefaultSigningCryptoperiod = 2 * 365 * 24 * time.Hour
	// DefaultCryptoperiodCheck is how often each node checks cryptoperiods.
	DefaultCryptoperiodCheck = time.Minute
)

// defaultCryptoperiod returns the cryptoperiod of a key of purpose p that
// was created without one.
func defaultCryptoperiod(p vaultpb.KeyPurpose) time.Duration {
	if p == vaultpb.KeyPurpose_KEY_PURPOSE_SIGNING {
		return DefaultSigningCryptoperiod
	}
	return DefaultDataCryptoperiod
}

// checkCryptoperiod validates a requested cryptoperiod (0: the default).
func checkCryptoperiod(field string, d time.Duration) error {
	if d < 0 || d > ceremony.MaxCryptoperiod {
		return fieldError(field, scheme.RuleAllowed, fmt.Sprintf("must be positive and at most %s", ceremony.MaxCryptoperiod))
	}
	return nil
}

// cryptoperiodOf returns rec's cryptoperiod.
func cryptoperiodOf(rec *vaultpb.KeyRecord) time.Duration {
	if d := rec.GetCryptoperiodNanos(); d > 0 {
		return time.Duration(d)
	}
	return defaultCryptoperiod(rec.GetPurpose())
}

// rotationDue returns when rec's latest version's cryptoperiod ends.
func rotationDue(rec *vaultpb.KeyRecord) time.Time {
	v := findVersion(rec, 0)
	created := rec.GetCreateUnixNanos()
	if v != nil {
		created = v.GetCreateUnixNanos()
	}
	return time.Unix(0, created).Add(cryptoperiodOf(rec))
}

// keyInfo is keyInfoToAPI with the cryptoperiod, the rotation due date and
// each version's state change time.
func (n *Node) keyInfo(rec *vaultpb.KeyRecord) *pb.KeyInfo {
	info := keyInfoToAPI(rec)
	due := rotationDue(rec)
	info.Cryptoperiod = durationpb.New(cryptoperiodOf(rec))
	info.RotationDueTime = timestamppb.New(due)
	info.RotationOverdue = !n.now().Before(due)
	for i, v := range rec.GetVersions() {
		if i >= len(info.Versions) {
			break
		}
		at := v.GetStateUnixNanos()
		if at == 0 {
			at = v.GetCreateUnixNanos()
		}
		info.Versions[i].StateChangeTime = timestamppb.New(time.Unix(0, at))
	}
	return info
}

// checkCryptoperiods looks at every key this node knows: an elapsed
// cryptoperiod sets the key's gauge and is logged once per key version.
func (n *Node) checkCryptoperiods() {
	n.keyring.mu.RLock()
	recs := make([]*vaultpb.KeyRecord, 0, len(n.keyring.recs))
	for _, r := range n.keyring.recs {
		recs = append(recs, r)
	}
	n.keyring.mu.RUnlock()
	sort.Slice(recs, func(i, j int) bool { return recs[i].GetName() < recs[j].GetName() })
	now := n.now()
	for _, rec := range recs {
		due := rotationDue(rec)
		elapsed := !now.Before(due)
		n.metrics.setCryptoperiodElapsed(rec.GetName(), elapsed)
		if !elapsed {
			continue
		}
		ref := keys.KeyRef{ID: rec.GetName(), Version: rec.GetLatestVersion()}
		if n.metrics.warnOnce(ref) {
			n.log.Warn("key cryptoperiod elapsed: rotate the key (rotate-key ceremony); it keeps working meanwhile",
				"key", rec.GetName(), "version", rec.GetLatestVersion(), "due", due.UTC().Format(time.RFC3339),
				"overdue", now.Sub(due).Round(time.Second).String())
		}
	}
	n.metrics.mu.Lock()
	n.metrics.cpChecks++
	n.metrics.mu.Unlock()
}

// runCryptoperiods checks cryptoperiods every CryptoperiodCheck until the
// node closes.
func (n *Node) runCryptoperiods() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.CryptoperiodCheck)
	defer t.Stop()
	for {
		n.checkCryptoperiods()
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}
