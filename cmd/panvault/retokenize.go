package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// errNotMigrated: the vault answered with tokens under a version that is
// not newer than the one they came from.
var errNotMigrated = errors.New("tokens not migrated")

// retokenResult is one line of retokenize output.
type retokenResult struct {
	Index      int        `json:"index"`
	Token      string     `json:"token,omitempty"`
	KeyVersion uint32     `json:"key_version,omitempty"`
	MaskedPAN  string     `json:"masked_pan,omitempty"`
	Error      *errorJSON `json:"error,omitempty"`
}

func newRetokenizeCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var scheme string
	var from uint32
	var batch int
	cmd := &cobra.Command{
		Use:   "retokenize --scheme S --from-version V [TOKEN...]",
		Short: "Migrate FF1 tokens made under an older key version to the latest (from arguments or stdin)",
		Long: `After an FF1 key rotation every token changes. Retokenize sends tokens made
under key version --from-version to the vault, which detokenizes and tokenizes
each again inside the vault (the PAN never leaves it) and returns the token
under the key's latest version. Tokens come from the arguments or, without
arguments, from stdin, one per line; output is one new token per line in
input order, in batches of --batch-size. A failed item leaves its line empty
and is reported on stderr by item number (never by its digits); exit status
1 then. Migrate every stored token before the old version is retired.`,
		RunE: func(c *cobra.Command, args []string) error {
			if batch < 1 {
				return &usageError{fmt.Errorf("--batch-size must be at least 1")}
			}
			if from == 0 {
				return &usageError{fmt.Errorf("--from-version is required (the key version that made the tokens)")}
			}
			items, err := readItems(args, io.in, "token")
			if err != nil {
				return err
			}
			return runRetokenize(c.Context(), io, cf, scheme, from, items, batch)
		},
	}
	cmd.Flags().StringVar(&scheme, "scheme", "", "FF1 token scheme")
	cmd.Flags().Uint32Var(&from, "from-version", 0, "key version that made the tokens")
	cmd.Flags().IntVar(&batch, "batch-size", 256, "tokens per Retokenize call")
	_ = cmd.MarkFlagRequired("scheme")
	return cmd
}

func runRetokenize(ctx context.Context, io *stdio, cf *clientFlags, scheme string, from uint32, tokens []string, batch int) error {
	cl, ctx, done, err := cf.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	results := make([]retokenResult, len(tokens))
	// FF1 is deterministic: resending an item gives the same new token, so
	// items failing with UNAVAILABLE are simply sent again.
	errs, err := sendInBatches(len(tokens), batch, func(chunk []int) ([]*pb.RetokenizeResult, error) {
		req := &pb.RetokenizeRequest{Scheme: scheme, FromKeyVersion: from, Items: make([]*pb.RetokenizeItem, len(chunk))}
		for j, i := range chunk {
			req.Items[j] = &pb.RetokenizeItem{Token: tokens[i]}
		}
		var resp *pb.RetokenizeResponse
		if err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
			resp, err = pb.NewTokenServiceClient(cc).Retokenize(ctx, req)
			return err
		}); err != nil {
			return nil, err
		}
		if to := resp.GetToKeyVersion(); to <= from {
			// Not a migration: the answering node's latest version is
			// still the old one (a rotation not yet applied there).
			return nil, fmt.Errorf("%w: the vault's latest version of the scheme's key is %d, not newer than --from-version %d; nothing was migrated (if the key was just rotated, try again)",
				errNotMigrated, to, from)
		}
		return resp.GetResults(), nil
	}, func(i int, s *pb.RetokenizeSuccess) {
		results[i] = retokenResult{Index: i, Token: s.GetToken(), KeyVersion: s.GetKeyVersion(), MaskedPAN: s.GetMaskedPan()}
	})
	if err != nil {
		return err
	}
	for i, e := range errs {
		results[i].Index = i
		results[i].Error = e
	}
	return printItems(io, cf, results, func(r retokenResult) string { return r.Token })
}
