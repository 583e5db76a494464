package devcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/ceremony"
)

// DevCustodians are the key custodians a dev cluster registers, each with
// an Ed25519 key file DIR/custodians/NAME.pem; DevQuorum of them must
// approve every ceremony. Dev mode only: real custodians keep their keys in
// their own PKCS#11 tokens.
var DevCustodians = []string{"alice", "bob", "carol"}

// DevQuorum is M for a dev cluster.
const DevQuorum = 2

// CustodiansDir is where the dev custodians' key files live.
func (c *Cluster) CustodiansDir() string { return filepath.Join(c.opts.Dir, "custodians") }

// CustodianKeyPath is the key file of dev custodian name.
func (c *Cluster) CustodianKeyPath(name string) string {
	return filepath.Join(c.CustodiansDir(), name+".pem")
}

// ProvisionCustodians makes (or reuses) the dev custodians' key files and,
// unless the cluster already has custodians, registers them with quorum
// DevQuorum through CeremonyService.InitCustodians, each with a freshly
// signed acknowledgement of the custodian duties. On a restarted cluster
// the registry is already there and is left as it is (custodians added or
// removed by ceremonies since stay so); it is only checked to still hold
// at least one dev custodian key, so that dev ceremonies remain possible.
func (c *Cluster) ProvisionCustodians(ctx context.Context) error {
	if err := os.MkdirAll(c.CustodiansDir(), 0o700); err != nil {
		return err
	}
	signers := make([]*ceremony.FileSigner, len(DevCustodians))
	for i, name := range DevCustodians {
		s, created, err := ceremony.LoadOrGenerateKeyFile(c.CustodianKeyPath(name), ceremony.AlgEd25519)
		if err != nil {
			return fmt.Errorf("devcluster: custodian %s: %w", name, err)
		}
		if created {
			c.opts.Log.Info("custodian key file created", "custodian", name, "file", c.CustodianKeyPath(name), "fingerprint", s.Fingerprint().String())
		}
		signers[i] = s
	}
	idx := -1
	for _, n := range c.Nodes() {
		if n.Running {
			idx = n.Index
			break
		}
	}
	if idx < 0 {
		return fmt.Errorf("%w: no running node to register custodians through", ErrNoNode)
	}
	cc, err := c.Dial(idx, Admin)
	if err != nil {
		return err
	}
	defer cc.Close()
	cs := pb.NewCeremonyServiceClient(cc)
	ctx, cancel := context.WithTimeout(ctx, c.opts.StartTimeout)
	defer cancel()

	var reg *pb.ListCustodiansResponse
	err = retryUnavailable(ctx, func(ctx context.Context) (err error) {
		reg, err = cs.ListCustodians(ctx, &pb.ListCustodiansRequest{})
		return err
	})
	if err != nil && status.Code(err) != codes.FailedPrecondition && status.Code(err) != codes.NotFound {
		return fmt.Errorf("devcluster: list custodians: %w", err)
	}
	if err == nil && len(reg.GetCustodians()) > 0 {
		var fps []string
		for _, cu := range reg.GetCustodians() {
			fps = append(fps, cu.GetFingerprint())
		}
		known := 0
		for _, s := range signers {
			if slices.Contains(fps, s.Fingerprint().String()) {
				known++
			}
		}
		if known == 0 {
			return fmt.Errorf("%w: the cluster's custodians hold none of the keys in %s", ErrMismatch, c.CustodiansDir())
		}
		c.opts.Log.Info("custodians", "registered", len(fps), "dev_keys", known, "quorum", reg.GetQuorum(), "created", false)
		return nil
	}

	req := &pb.InitCustodiansRequest{Quorum: DevQuorum}
	now := time.Now().UTC()
	for i, name := range DevCustodians {
		cu, err := ceremony.SignAcknowledgement(signers[i], name, now)
		if err != nil {
			return fmt.Errorf("devcluster: custodian %s: %w", name, err)
		}
		req.Custodians = append(req.Custodians, &pb.CustodianRegistration{Name: cu.Name, PublicKeyDer: cu.PublicKey,
			AcknowledgeTime: timestamppb.New(cu.Acknowledged), AckSignature: cu.AckSignature})
	}
	var resp *pb.InitCustodiansResponse
	err = retryUnavailable(ctx, func(ctx context.Context) (err error) {
		resp, err = cs.InitCustodians(ctx, req)
		return err
	})
	if err != nil {
		return fmt.Errorf("devcluster: register custodians: %w", err)
	}
	c.opts.Log.Info("custodians", "registered", len(resp.GetCustodians()), "quorum", resp.GetQuorum(), "created", resp.GetCreated(), "keys", c.CustodiansDir())
	return nil
}
