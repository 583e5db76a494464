package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

func newMKStageCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var files, identities []string
	cmd := &cobra.Command{
		Use:   "stage --component FILE... [--identity AGE-KEY-FILE ...]",
		Short: "Stage a new master key on every node of $PANVAULT_ADDR (admin; for a rotate-master-key ceremony)",
		Long: `Send the components of a new master key (files from "mk components", plain or
age-encrypted) over mTLS to every node listed in PANVAULT_ADDR (or --addr),
one by one: each node checks every component's KCV and the master key's in
its HSM and keeps the new master key beside the current one. A
rotate-master-key ceremony naming this master key can be carried out only
once every voting node has staged it ("mk cluster-status" shows which have).
Component values are never printed and are zeroed here after sending.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runMKStage(c, io, cf, files, identities)
		},
	}
	cmd.Flags().StringArrayVar(&files, "component", nil, "component file (repeat for every component)")
	cmd.Flags().StringArrayVar(&identities, "identity", nil, "age identity file that decrypts encrypted components (repeatable; mode 0600)")
	_ = cmd.MarkFlagRequired("component")
	return cmd
}

func runMKStage(c *cobra.Command, io *stdio, cf *clientFlags, files, identityFiles []string) error {
	ids, err := readIdentities(identityFiles)
	if err != nil {
		return &usageError{err}
	}
	parsed, _, err := readComponentSet(files, ids)
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range parsed {
			p.Zero()
		}
	}()
	first := parsed[0]
	// In component order, as the ceremony lists their KCVs.
	ordered := make([]*componentFile, first.Count)
	for _, p := range parsed {
		ordered[p.Index-1] = p
	}
	cl, ctx, done, err := cf.session(c.Context())
	if err != nil {
		return err
	}
	defer done()

	type nodeResult struct {
		Addr   string     `json:"addr"`
		NodeID string     `json:"node_id,omitempty"`
		Staged bool       `json:"staged"`
		Error  *errorJSON `json:"error,omitempty"`
	}
	var results []nodeResult
	failed := false
	for i, addr := range cl.addrs {
		// A fresh request per node: the message's component buffers are
		// zeroed right after each call.
		req := &pb.StageMasterKeyRequest{MasterKcv: first.MasterKCV.String()}
		for _, p := range ordered {
			req.Components = append(req.Components, &pb.MasterKeyComponent{Value: append([]byte(nil), p.Value...), Kcv: p.KCV.String()})
		}
		actx, acancel := context.WithTimeout(ctx, perAttempt)
		resp, err := pb.NewCeremonyServiceClient(cl.conns[i]).StageMasterKey(actx, req)
		acancel()
		for _, mc := range req.GetComponents() {
			clear(mc.Value)
		}
		r := nodeResult{Addr: addr}
		if err != nil {
			d := describeError(err)
			r.Error, failed = &d, true
			fmt.Fprintf(io.err, "panvault: node at %s: %s\n", addr, d)
		} else {
			r.NodeID, r.Staged = resp.GetNodeId(), resp.GetStaged()
		}
		results = append(results, r)
	}
	if cf.json() {
		if err := writeJSON(io.out, map[string]any{"master_kcv": first.MasterKCV.String(), "nodes": results}); err != nil {
			return err
		}
	} else {
		for _, p := range ordered {
			fmt.Fprintf(io.out, "component %d of %d (%s): KCV %s\n", p.Index, p.Count, p.Path, p.KCV)
		}
		for _, r := range results {
			switch {
			case r.Error != nil:
				fmt.Fprintf(io.out, "%s: FAILED\n", r.Addr)
			case r.Staged:
				fmt.Fprintf(io.out, "%s (%s): master key %s staged\n", r.NodeID, r.Addr, first.MasterKCV)
			default:
				fmt.Fprintf(io.out, "%s (%s): master key %s was already staged\n", r.NodeID, r.Addr, first.MasterKCV)
			}
		}
	}
	if failed {
		return errItemsFailed
	}
	return nil
}

func newMKClusterStatusCmd(io *stdio, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "cluster-status",
		Short: "Show the cluster's current master key KCV and what each node has staged",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var resp *pb.GetMasterKeyStatusResponse
			if err := adminCall(c, cf, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewCeremonyServiceClient(cc).GetMasterKeyStatus(ctx, &pb.GetMasterKeyStatusRequest{})
				return err
			}); err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, resp)
			}
			fmt.Fprintf(io.out, "current master key: KCV %s\n", resp.GetCurrentKcv())
			tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tSTAGED")
			for _, n := range resp.GetNodes() {
				fmt.Fprintf(tw, "%s\t%s\n", n.GetNodeId(), firstNonEmpty(strings.Join(n.GetStagedKcvs(), ","), "-"))
			}
			return tw.Flush()
		},
	}
}
