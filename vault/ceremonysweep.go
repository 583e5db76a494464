package vault

import (
	"errors"
	"log/slog"
	"time"

	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/ceremony"
)

// runCeremonySweep is the leader's ceremony housekeeping, every
// JobInterval: pending ceremonies past their expiry are closed as expired,
// and ceremonies that have their quorum but were not carried out (the node
// that took the last approval failed for a passing reason, or lost
// leadership) are carried out. Decisions go through the same
// compare-and-set on the log head as every other step, so a sweep racing a
// request does no harm.
func (n *Node) runCeremonySweep() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.JobInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if n.store.IsLeader() {
			n.sweepCeremonies()
		}
	}
}

func (n *Node) sweepCeremonies() {
	ctx := n.ctx
	base, err := n.readCeremonyBase(ctx, raftstore.Stale) // ErrCustodiansNotInitialised until custodians are
	if err != nil {
		return
	}
	all, err := n.scanCeremonies(ctx)
	if err != nil {
		n.log.Warn("ceremony sweep", "err", err)
		return
	}
	now := n.now()
	for _, st := range all {
		if st.Status != ceremony.StatusPending || n.closed() {
			continue
		}
		switch {
		case st.Ready(base.reg):
			if _, _, _, err := n.executeCeremony(ctx, st.ID); err != nil && !n.closed() {
				level := slog.LevelWarn
				if errors.Is(err, ErrMasterKeyNotStaged) {
					level = slog.LevelDebug // waiting for operators; not news every tick
				}
				n.log.Log(ctx, level, "ceremony not carried out yet", "ceremony", st.ID, "err", err)
			}
		case !now.Before(st.Proposal.Expires):
			if err := n.expireCeremony(ctx, st.ID); err != nil && !n.closed() {
				n.log.Warn("ceremony expiry", "ceremony", st.ID, "err", err)
			}
		}
	}
}
