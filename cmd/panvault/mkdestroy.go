package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault"
)

func newMKDestroyOldCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var kcv string
	cmd := &cobra.Command{
		Use:   "destroy-old --kcv KCV",
		Short: "Destroy an old master key in the HSM of every node of $PANVAULT_ADDR (admin; after a rotate-master-key ceremony)",
		Long: `After a rotate-master-key ceremony every node uses the new master key, but the
old one stays in each node's HSM. This command asks every node listed in
PANVAULT_ADDR (or --addr), one by one, to destroy the master key with KCV
--kcv in its HSM. A node refuses (FAILED_PRECONDITION) to destroy the
cluster's current master key, the master key of a pending rotate-master-key
ceremony or one staged for a rotation not carried out, and destroys nothing
while it has not switched to the current master key itself. Running it again
is harmless: a node that no longer holds the key says so.

One line per node; the exit status is 1 if any node failed. On a network HSM
partition shared by several nodes, run it only once every node has switched.
A node whose configuration still names the destroyed key ([hsm]
master_key_label, by default "panvault-master-key") restarts on the current
one, which the replicated state names; only a new node (no Raft state) needs
the configured label to hold its master key. The line printed at the end,
when a key was destroyed, names the current key's label.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runMKDestroyOld(c, io, cf, kcv)
		},
	}
	cmd.Flags().StringVar(&kcv, "kcv", "", "KCV of the old master key (6 hex digits, as `mk cluster-status` showed it before the rotation)")
	_ = cmd.MarkFlagRequired("kcv")
	return cmd
}

// nodeOutcome is the result of one call made to one node.
type nodeOutcome struct {
	Addr  string
	Error *errorJSON
}

// callEveryNode calls fn once on every node of cl, in the order of its
// addresses (no fail-over: each node must act on its own HSM), each call
// bounded by perAttempt. A failure is printed on stderr as "panvault: node
// at ADDR: ..." and recorded; the other nodes are still called.
func callEveryNode(ctx context.Context, io *stdio, cl *cluster, fn func(ctx context.Context, i int, cc *grpc.ClientConn) error) []nodeOutcome {
	out := make([]nodeOutcome, len(cl.addrs))
	for i, addr := range cl.addrs {
		actx, cancel := context.WithTimeout(ctx, perAttempt)
		err := fn(actx, i, cl.conns[i])
		cancel()
		out[i].Addr = addr
		if err != nil {
			d := describeError(err)
			out[i].Error = &d
			fmt.Fprintf(io.err, "panvault: node at %s: %s\n", addr, d)
		}
	}
	return out
}

func runMKDestroyOld(c *cobra.Command, io *stdio, cf *clientFlags, kcvArg string) error {
	kcv, err := keys.ParseKCV(kcvArg)
	if err != nil {
		return &usageError{fmt.Errorf("--kcv: %w", err)}
	}
	cl, ctx, done, err := cf.session(c.Context())
	if err != nil {
		return err
	}
	defer done()

	resps := make([]*pb.DestroyOldMasterKeyResponse, len(cl.addrs))
	outcomes := callEveryNode(ctx, io, cl, func(ctx context.Context, i int, cc *grpc.ClientConn) (err error) {
		resps[i], err = pb.NewCeremonyServiceClient(cc).DestroyOldMasterKey(ctx, &pb.DestroyOldMasterKeyRequest{Kcv: kcv.String()})
		return err
	})
	failed, destroyed := false, false
	for i, o := range outcomes {
		failed = failed || o.Error != nil
		destroyed = destroyed || resps[i].GetDestroyed()
	}
	// The label the nodes' configuration should name from now on: a
	// rotation stages every new master key under vault.StagedMasterKeyLabel.
	var current string
	if destroyed {
		var st *pb.GetMasterKeyStatusResponse
		err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
			st, err = pb.NewCeremonyServiceClient(cc).GetMasterKeyStatus(ctx, &pb.GetMasterKeyStatusRequest{})
			return err
		})
		if cur, perr := keys.ParseKCV(st.GetCurrentKcv()); err == nil && perr == nil {
			current = cur.String()
		} else if err != nil {
			fmt.Fprintf(io.err, "panvault: reading the current master key: %s\n", describeError(err))
		}
	}

	if cf.json() {
		type nodeJSON struct {
			Addr      string     `json:"addr"`
			NodeID    string     `json:"node_id,omitempty"`
			Destroyed bool       `json:"destroyed"`
			Error     *errorJSON `json:"error,omitempty"`
		}
		nodes := make([]nodeJSON, len(outcomes))
		for i, o := range outcomes {
			nodes[i] = nodeJSON{Addr: o.Addr, NodeID: resps[i].GetNodeId(), Destroyed: resps[i].GetDestroyed(), Error: o.Error}
		}
		doc := map[string]any{"kcv": kcv.String(), "nodes": nodes}
		if current != "" {
			doc["current_kcv"] = current
			doc["current_label"] = vault.StagedMasterKeyLabel(mustKCV(current))
		}
		if err := writeJSON(io.out, doc); err != nil {
			return err
		}
	} else {
		for i, o := range outcomes {
			switch {
			case o.Error != nil:
				fmt.Fprintf(io.out, "%s: FAILED\n", o.Addr)
			case resps[i].GetDestroyed():
				fmt.Fprintf(io.out, "%s (%s): master key %s destroyed\n", resps[i].GetNodeId(), o.Addr, kcv)
			default:
				fmt.Fprintf(io.out, "%s (%s): master key %s was not in its HSM\n", resps[i].GetNodeId(), o.Addr, kcv)
			}
		}
		if current != "" {
			fmt.Fprintf(io.out, "current master key %s has label %q: nodes with state switch to it at start\n",
				current, vault.StagedMasterKeyLabel(mustKCV(current)))
		}
	}
	if failed {
		return errItemsFailed
	}
	return nil
}

// mustKCV parses a KCV already checked by keys.ParseKCV.
func mustKCV(s string) keys.KCV {
	k, _ := keys.ParseKCV(s)
	return k
}
