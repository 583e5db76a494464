package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// tokenResult is one line of tokenize output.
type tokenResult struct {
	Index      int        `json:"index"`
	Token      string     `json:"token,omitempty"`
	Scheme     string     `json:"scheme,omitempty"`
	KeyVersion uint32     `json:"key_version,omitempty"`
	MaskedPAN  string     `json:"masked_pan,omitempty"`
	Brand      string     `json:"brand,omitempty"`
	Created    bool       `json:"created,omitempty"`
	Error      *errorJSON `json:"error,omitempty"`
}

// deleteResult is one line of delete-token output.
type deleteResult struct {
	Index   int        `json:"index"`
	Deleted bool       `json:"deleted"`
	Error   *errorJSON `json:"error,omitempty"`
}

// panResult is one line of detokenize output.
type panResult struct {
	Index      int        `json:"index"`
	PAN        string     `json:"pan,omitempty"`
	MaskedPAN  string     `json:"masked_pan,omitempty"`
	Scheme     string     `json:"scheme,omitempty"`
	KeyVersion uint32     `json:"key_version,omitempty"`
	Brand      string     `json:"brand,omitempty"`
	Error      *errorJSON `json:"error,omitempty"`
}

func newTokenizeCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var scheme string
	var batch int
	cmd := &cobra.Command{
		Use:   "tokenize --scheme S [PAN...]",
		Short: "Tokenize PANs (from arguments, or stdin one per line)",
		Long: `Tokenize PANs under a scheme. PANs come from the arguments or, without
arguments, from stdin, one per line (blank lines are skipped). Output is one
token per line in input order; a failed item leaves its line empty and is
reported on stderr by item number (never by its digits). Many PANs go in
TokenizeBatch calls; every item carries a request id, so items are retried
safely on UNAVAILABLE. Exit status 1 when any item failed.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			items, err := readItems(args, io.in, "PAN")
			if err != nil {
				return err
			}
			return runTokenize(cmd.Context(), io, cf, scheme, items, batch)
		},
	}
	cmd.Flags().StringVar(&scheme, "scheme", "", "token scheme name")
	cmd.Flags().IntVar(&batch, "batch-size", 256, "items per TokenizeBatch call")
	_ = cmd.MarkFlagRequired("scheme")
	return cmd
}

func newDetokenizeCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var scheme string
	var batch int
	var masked, stale bool
	cmd := &cobra.Command{
		Use:   "detokenize --scheme S [TOKEN...]",
		Short: "Detokenize tokens (from arguments, or stdin one per line)",
		Long: `Detokenize tokens of a scheme. Tokens come from the arguments or, without
arguments, from stdin, one per line. Output is one PAN per line in input order
(--masked: the masked PAN); a failed item leaves its line empty and is
reported on stderr. Reads are linearizable unless --stale. Exit status 1 when
any item failed.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			items, err := readItems(args, io.in, "token")
			if err != nil {
				return err
			}
			return runDetokenize(cmd.Context(), io, cf, scheme, items, batch, masked, stale)
		},
	}
	cmd.Flags().StringVar(&scheme, "scheme", "", "token scheme name")
	cmd.Flags().IntVar(&batch, "batch-size", 256, "items per DetokenizeBatch call")
	cmd.Flags().BoolVar(&masked, "masked", false, "return masked PANs only")
	cmd.Flags().BoolVar(&stale, "stale", false, "read the answering node's local state (lowest latency)")
	_ = cmd.MarkFlagRequired("scheme")
	return cmd
}

func newDeleteTokenCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var scheme string
	cmd := &cobra.Command{
		Use:   "delete-token --scheme S TOKEN...",
		Short: "Delete vaulted tokens (their encrypted PANs are removed from every node)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, ctx, done, err := cf.session(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			prefix, err := requestPrefix()
			if err != nil {
				return err
			}
			results := make([]deleteResult, len(args))
			for i, tok := range args {
				results[i].Index = i
				req := &pb.DeleteTokenRequest{Scheme: scheme, Token: tok, RequestId: fmt.Sprintf("%s-%d", prefix, i)}
				var resp *pb.DeleteTokenResponse
				err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
					resp, err = pb.NewTokenServiceClient(cc).DeleteToken(ctx, req)
					return err
				})
				if err != nil {
					d := describeError(err)
					results[i].Error = &d
					continue
				}
				results[i].Deleted = resp.GetDeleted()
			}
			return printItems(io, cf, results, func(r deleteResult) string {
				switch {
				case r.Error != nil:
					return ""
				case r.Deleted:
					return "deleted"
				}
				return "absent"
			})
		},
	}
	cmd.Flags().StringVar(&scheme, "scheme", "", "token scheme name")
	_ = cmd.MarkFlagRequired("scheme")
	return cmd
}

// readItems returns args, or the non-blank lines of in when there are none.
func readItems(args []string, in io.Reader, what string) ([]string, error) {
	if len(args) > 0 {
		return args, nil
	}
	var items []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			items = append(items, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading stdin: %w", err)
	}
	if len(items) == 0 {
		return nil, &usageError{fmt.Errorf("no %s given (arguments or stdin, one per line)", what)}
	}
	return items, nil
}

// requestPrefix returns a random prefix for this invocation's request ids.
func requestPrefix() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "cli-" + hex.EncodeToString(b[:]), nil
}

func runTokenize(ctx context.Context, io *stdio, cf *clientFlags, scheme string, pans []string, batch int) error {
	if batch < 1 {
		return &usageError{fmt.Errorf("--batch-size must be at least 1")}
	}
	cl, ctx, done, err := cf.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	prefix, err := requestPrefix()
	if err != nil {
		return err
	}
	results := make([]tokenResult, len(pans))
	for i := range results {
		results[i].Index = i
	}
	ok := func(i int, r *pb.TokenizeResponse) {
		results[i] = tokenResult{Index: i, Token: r.GetToken(), Scheme: r.GetScheme(), KeyVersion: r.GetKeyVersion(),
			MaskedPAN: r.GetMaskedPan(), Brand: enumName(r.GetBrand().String(), "CARD_BRAND_"), Created: r.GetCreated()}
	}
	if len(pans) == 1 {
		req := &pb.TokenizeRequest{Scheme: scheme, Pan: pans[0], RequestId: prefix + "-0"}
		var resp *pb.TokenizeResponse
		err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
			resp, err = pb.NewTokenServiceClient(cc).Tokenize(ctx, req)
			return err
		})
		if err != nil {
			d := describeError(err)
			results[0].Error = &d
		} else {
			ok(0, resp)
		}
	} else {
		errs, err := sendInBatches(len(pans), batch, func(chunk []int) ([]*pb.TokenizeBatchResult, error) {
			req := &pb.TokenizeBatchRequest{Scheme: scheme, Items: make([]*pb.TokenizeBatchItem, len(chunk))}
			for j, i := range chunk {
				req.Items[j] = &pb.TokenizeBatchItem{Pan: pans[i], RequestId: fmt.Sprintf("%s-%d", prefix, i)}
			}
			var resp *pb.TokenizeBatchResponse
			err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewTokenServiceClient(cc).TokenizeBatch(ctx, req)
				return err
			})
			return resp.GetResults(), err
		}, ok)
		if err != nil {
			return err
		}
		for i, e := range errs {
			results[i].Error = e
		}
	}
	return printItems(io, cf, results, func(r tokenResult) string { return r.Token })
}

func runDetokenize(ctx context.Context, io *stdio, cf *clientFlags, scheme string, tokens []string, batch int, masked, stale bool) error {
	if batch < 1 {
		return &usageError{fmt.Errorf("--batch-size must be at least 1")}
	}
	cl, ctx, done, err := cf.session(ctx)
	if err != nil {
		return err
	}
	defer done()
	cons := pb.Consistency_CONSISTENCY_LINEARIZABLE
	if stale {
		cons = pb.Consistency_CONSISTENCY_STALE
	}
	results := make([]panResult, len(tokens))
	ok := func(i int, r *pb.DetokenizeResponse) {
		results[i] = panResult{Index: i, PAN: r.GetPan(), MaskedPAN: r.GetMaskedPan(), Scheme: r.GetScheme(),
			KeyVersion: r.GetKeyVersion(), Brand: enumName(r.GetBrand().String(), "CARD_BRAND_")}
	}
	if len(tokens) == 1 {
		req := &pb.DetokenizeRequest{Scheme: scheme, Token: tokens[0], Consistency: cons, Masked: masked}
		var resp *pb.DetokenizeResponse
		err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
			resp, err = pb.NewTokenServiceClient(cc).Detokenize(ctx, req)
			return err
		})
		if err != nil {
			d := describeError(err)
			results[0].Error = &d
		} else {
			ok(0, resp)
		}
	} else {
		errs, err := sendInBatches(len(tokens), batch, func(chunk []int) ([]*pb.DetokenizeBatchResult, error) {
			req := &pb.DetokenizeBatchRequest{Scheme: scheme, Consistency: cons, Masked: masked,
				Items: make([]*pb.DetokenizeBatchItem, len(chunk))}
			for j, i := range chunk {
				req.Items[j] = &pb.DetokenizeBatchItem{Token: tokens[i]}
			}
			var resp *pb.DetokenizeBatchResponse
			err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewTokenServiceClient(cc).DetokenizeBatch(ctx, req)
				return err
			})
			return resp.GetResults(), err
		}, ok)
		if err != nil {
			return err
		}
		for i, e := range errs {
			results[i].Index = i
			results[i].Error = e
		}
	}
	return printItems(io, cf, results, func(r panResult) string {
		if masked {
			return r.MaskedPAN
		}
		return r.PAN
	})
}
