package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

func newClusterCmd(io *stdio, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Cluster membership and health (admin)"}

	status := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster as the answering node sees it",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var resp *pb.StatusResponse
			if err := adminCall(c, cf, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewClusterServiceClient(cc).Status(ctx, &pb.StatusRequest{})
				return err
			}); err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, resp)
			}
			fmt.Fprintf(io.out, "answered by %s (%s), term %d, commit %d, applied %d\n", resp.GetNodeId(),
				flagName(resp.GetRole().String(), "NODE_ROLE_"), resp.GetTerm(), resp.GetCommitIndex(), resp.GetAppliedIndex())
			leader := resp.GetLeaderId()
			if leader == "" {
				leader = "none known"
			}
			fmt.Fprintf(io.out, "leader: %s\n", leader)
			tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tRAFT ADDRESS\tROLE\tSUFFRAGE")
			for _, n := range resp.GetNodes() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.GetId(), n.GetRaftAddress(),
					flagName(n.GetRole().String(), "NODE_ROLE_"), flagName(n.GetSuffrage().String(), "SUFFRAGE_"))
			}
			return tw.Flush()
		},
	}

	var nonvoter bool
	join := &cobra.Command{
		Use:   "join NODE_ID RAFT_ADDR",
		Short: "Add a node to the Raft configuration (no-op if already a member)",
		Args:  cobra.ExactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			var resp *pb.JoinResponse
			req := &pb.JoinRequest{NodeId: args[0], RaftAddress: args[1], Nonvoter: nonvoter}
			// Idempotent: joining with the same id and address is a no-op.
			if err := adminCall(c, cf, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewClusterServiceClient(cc).Join(ctx, req)
				return err
			}); err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, resp)
			}
			if resp.GetAdded() {
				fmt.Fprintf(io.out, "node %s added\n", args[0])
			} else {
				fmt.Fprintf(io.out, "node %s already a member\n", args[0])
			}
			return nil
		},
	}
	join.Flags().BoolVar(&nonvoter, "nonvoter", false, "join as a non-voter (read replica)")

	remove := &cobra.Command{
		Use:   "remove NODE_ID",
		Short: "Remove a node from the Raft configuration (no-op if not a member)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var resp *pb.RemoveResponse
			// Not retried when its outcome is unknown: the retry would
			// report a node this call removed as "not a member", and would
			// remove a node of that id that joined again meanwhile.
			if err := adminCall(c, cf, notIdempotent("panvault cluster status"), func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewClusterServiceClient(cc).Remove(ctx, &pb.RemoveRequest{NodeId: args[0]})
				return err
			}); err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, resp)
			}
			if resp.GetRemoved() {
				fmt.Fprintf(io.out, "node %s removed\n", args[0])
			} else {
				fmt.Fprintf(io.out, "node %s was not a member\n", args[0])
			}
			return nil
		},
	}

	transfer := &cobra.Command{
		Use:   "transfer [NODE_ID]",
		Short: "Hand leadership to a voter (default: the most up-to-date one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			req := &pb.TransferLeadershipRequest{}
			if len(args) == 1 {
				req.TargetNodeId = args[0]
			}
			var resp *pb.TransferLeadershipResponse
			// Not retried when its outcome is unknown: a second transfer
			// would move leadership again.
			if err := adminCall(c, cf, notIdempotent("panvault cluster status"), func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewClusterServiceClient(cc).TransferLeadership(ctx, req)
				return err
			}); err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, resp)
			}
			fmt.Fprintf(io.out, "leader: %s\n", resp.GetLeaderId())
			return nil
		},
	}
	cmd.AddCommand(status, join, remove, transfer)
	return cmd
}
