package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

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
	cl, err := cf.connect()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	results := make([]retokenResult, len(tokens))
	pending := make([]int, len(tokens))
	for i := range tokens {
		results[i].Index = i
		pending[i] = i
	}
	// FF1 is deterministic: resending an item gives the same new token, so
	// items failing with UNAVAILABLE are simply sent again.
	for round := 0; len(pending) > 0 && round < maxItemRounds; round++ {
		var again []int
		for start := 0; start < len(pending); start += batch {
			chunk := pending[start:min(start+batch, len(pending))]
			req := &pb.RetokenizeRequest{Scheme: scheme, FromKeyVersion: from, Items: make([]*pb.RetokenizeItem, len(chunk))}
			for j, i := range chunk {
				req.Items[j] = &pb.RetokenizeItem{Token: tokens[i]}
			}
			var resp *pb.RetokenizeResponse
			if err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewTokenServiceClient(cc).Retokenize(ctx, req)
				return err
			}); err != nil {
				return err
			}
			if len(resp.GetResults()) != len(chunk) {
				return fmt.Errorf("server returned %d results for %d items", len(resp.GetResults()), len(chunk))
			}
			if to := resp.GetToKeyVersion(); to <= from {
				// Not a migration: the answering node's latest version is
				// still the old one (a rotation not yet applied there).
				return fmt.Errorf("%w: the vault's latest version of the scheme's key is %d, not newer than --from-version %d; nothing was migrated (if the key was just rotated, try again)",
					errNotMigrated, to, from)
			}
			for j, r := range resp.GetResults() {
				i := chunk[j]
				if s := r.GetSuccess(); s != nil {
					results[i] = retokenResult{Index: i, Token: s.GetToken(), KeyVersion: s.GetKeyVersion(), MaskedPAN: s.GetMaskedPan()}
					continue
				}
				e := itemError(r.GetError())
				results[i].Error = &e
				if codes.Code(r.GetError().GetCode()) == codes.Unavailable {
					again = append(again, i)
				}
			}
		}
		pending = again
	}
	failed := false
	for _, r := range results {
		if r.Error != nil {
			failed = true
			reportItem(io.err, r.Index+1, *r.Error)
		}
	}
	if cf.json() {
		if err := writeJSON(io.out, map[string]any{"results": results}); err != nil {
			return err
		}
	} else {
		w := bufio.NewWriter(io.out)
		for _, r := range results {
			fmt.Fprintln(w, r.Token)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if failed {
		return errItemsFailed
	}
	return nil
}
