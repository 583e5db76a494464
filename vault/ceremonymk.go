package vault

import (
	"context"
	"fmt"
	"time"

	"github.com/panvault/panvault/vault/ceremony"
)

// useReplicatedMasterKey makes the HSM use the master key the replicated
// state names (after a master-key rotation).
func (n *Node) useReplicatedMasterKey(ctx context.Context) error { return nil }

func (n *Node) checkMasterKeyRotation(ctx context.Context, p ceremony.RotateMasterKey, execute bool) error {
	return fmt.Errorf("%w: rotate-master-key", ErrUnsupported)
}

func (n *Node) prepareMasterKeyRotation(ctx context.Context, p ceremony.RotateMasterKey, now time.Time) (*execution, error) {
	return lasting(fmt.Errorf("%w: rotate-master-key", ErrUnsupported))
}
