package devcluster

import (
	"context"
	"fmt"
	"time"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
)

// Names of what Provision creates: the vault's dev names (vault/devsetup.go),
// which in-process test clusters use too.
const (
	KeyPANEncryption  = vault.DevKeyPAN
	KeyPANFingerprint = vault.DevKeyFingerprint
	KeyPANFPE         = vault.DevKeyFF1
	KeySigning        = vault.DevKeySigning

	SchemePAN    = vault.DevSchemeVaulted       // vaulted, keeps 6+4, Luhn fail
	SchemePANDet = vault.DevSchemeDeterministic // vaulted, deterministic, keeps 6+4, Luhn fail
	SchemePANFF1 = vault.DevSchemeFF1           // FF1, keeps leading 6, Luhn fail, lengths 13-19
)

// DefaultKeys returns the keys Provision creates (fresh messages each call).
func DefaultKeys() []*pb.CreateKeyRequest {
	return []*pb.CreateKeyRequest{
		{Name: KeyPANEncryption, Type: pb.KeyType_KEY_TYPE_AES256, Purpose: pb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION},
		{Name: KeyPANFingerprint, Type: pb.KeyType_KEY_TYPE_HMAC_SHA256, Purpose: pb.KeyPurpose_KEY_PURPOSE_FINGERPRINT},
		{Name: KeyPANFPE, Type: pb.KeyType_KEY_TYPE_AES256, Purpose: pb.KeyPurpose_KEY_PURPOSE_FPE},
		{Name: KeySigning, Type: pb.KeyType_KEY_TYPE_ECDSA_P256, Purpose: pb.KeyPurpose_KEY_PURPOSE_SIGNING},
	}
}

// DefaultSchemes returns the schemes Provision creates (fresh messages each
// call): vault.DevSchemes.
func DefaultSchemes() []*pb.Scheme { return vault.DevSchemes() }

// Provision creates DefaultKeys and DefaultSchemes through the admin API of a
// running node, then the dev custodians (ProvisionCustodians). Creation is
// idempotent, so a restarted cluster provisions again harmlessly.
func (c *Cluster) Provision(ctx context.Context) error {
	var idx = -1
	for _, n := range c.Nodes() {
		if n.Running {
			idx = n.Index
			break
		}
	}
	if idx < 0 {
		return fmt.Errorf("%w: no running node to provision through", ErrNoNode)
	}
	cc, err := c.Dial(idx, Admin)
	if err != nil {
		return err
	}
	defer cc.Close()
	admin := pb.NewAdminServiceClient(cc)
	ctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()
	for _, k := range DefaultKeys() {
		var created bool
		err := retryUnavailable(ctx, func(ctx context.Context) error {
			resp, err := admin.CreateKey(ctx, k)
			created = resp.GetCreated()
			return err
		})
		if err != nil {
			return fmt.Errorf("devcluster: create key %s: %w", k.GetName(), err)
		}
		c.opts.Log.Info("key", "name", k.GetName(), "created", created)
	}
	for _, s := range DefaultSchemes() {
		var created bool
		err := retryUnavailable(ctx, func(ctx context.Context) error {
			resp, err := admin.CreateScheme(ctx, &pb.CreateSchemeRequest{Scheme: s})
			created = resp.GetCreated()
			return err
		})
		if err != nil {
			return fmt.Errorf("devcluster: create scheme %s: %w", s.GetName(), err)
		}
		c.opts.Log.Info("scheme", "name", s.GetName(), "created", created)
	}
	return c.ProvisionCustodians(ctx)
}

// backoff is a capped exponential delay for retries.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 100 * time.Millisecond} }

func (b *backoff) wait(ctx context.Context) error {
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	b.d = min(2*b.d, 2*time.Second)
	return nil
}
