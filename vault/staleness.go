package vault

import (
	"fmt"
	"time"
)

// Bounded staleness of STALE reads. A stale read answers from this node's
// local state; a node cut off from the leader would otherwise keep
// answering from state of any age, including PANs whose deletion the rest
// of the cluster acknowledged long ago. So a STALE detokenize of a vaulted
// token is refused (ErrStaleReadTooOld, UNAVAILABLE STALE_READ_TOO_OLD)
// unless this node heard from the leader within MaxStaleness (or is the
// leader). What a STALE read may therefore return: the state this node had
// applied at some moment within about MaxStaleness before the request,
// plus the replication lag of that moment (normally milliseconds) — in
// particular a token deleted within that window may still be answered.
// FF1 schemes read no state and are unaffected.

// DefaultMaxStaleness is twice raftstore's default heartbeat timeout.
const DefaultMaxStaleness = 2 * time.Second

// checkStaleness refuses a stale read when the last contact with the
// leader is older than MaxStaleness.
func (n *Node) checkStaleness() error {
	since, ok := n.store.LastLeaderContact()
	if !ok {
		return fmt.Errorf("%w: no leader known", ErrStaleReadTooOld)
	}
	if since > n.cfg.MaxStaleness {
		return fmt.Errorf("%w: last contact %v ago (bound %v)", ErrStaleReadTooOld, since.Round(time.Millisecond), n.cfg.MaxStaleness)
	}
	return nil
}
