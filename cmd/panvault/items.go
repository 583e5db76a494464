package main

import (
	"bufio"
	"fmt"

	"google.golang.org/grpc/codes"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// maxItemRounds bounds how often items failing with UNAVAILABLE are resent.
const maxItemRounds = 8

// batchResult is one item's answer in a batch response: a success of type
// S, or an error.
type batchResult[S comparable] interface {
	GetSuccess() S
	GetError() *pb.ItemError
}

// sendInBatches sends items 0..n-1 in chunks of at most size through send,
// which returns the chunk's results in chunk order. Each success goes to ok;
// an item that failed with UNAVAILABLE is sent again in the next round, up
// to maxItemRounds rounds in all (callers only batch requests that are safe
// to resend). It returns each item's last error (nil for successes), or the
// error of a whole call.
func sendInBatches[R batchResult[S], S comparable](n, size int, send func(chunk []int) ([]R, error), ok func(i int, s S)) ([]*errorJSON, error) {
	errs := make([]*errorJSON, n)
	pending := make([]int, n)
	for i := range pending {
		pending[i] = i
	}
	var none S
	for round := 0; len(pending) > 0 && round < maxItemRounds; round++ {
		var again []int
		for start := 0; start < len(pending); start += size {
			chunk := pending[start:min(start+size, len(pending))]
			results, err := send(chunk)
			if err != nil {
				return nil, err
			}
			if len(results) != len(chunk) {
				return nil, fmt.Errorf("server returned %d results for %d items", len(results), len(chunk))
			}
			for j, r := range results {
				i := chunk[j]
				if s := r.GetSuccess(); s != none {
					ok(i, s)
					errs[i] = nil
					continue
				}
				e := itemError(r.GetError())
				errs[i] = &e
				if codes.Code(r.GetError().GetCode()) == codes.Unavailable {
					again = append(again, i)
				}
			}
		}
		pending = again
	}
	return errs, nil
}

// itemOutcome is a line of per-item output (tokenize, detokenize,
// retokenize, delete-token).
type itemOutcome interface{ failure() *errorJSON }

func (r tokenResult) failure() *errorJSON   { return r.Error }
func (r panResult) failure() *errorJSON     { return r.Error }
func (r retokenResult) failure() *errorJSON { return r.Error }
func (r deleteResult) failure() *errorJSON  { return r.Error }

// printItems reports each failed item on stderr by its number (never its
// value), then prints the results: {"results": [...]} with --output json,
// else line(r) per item in input order. It returns errItemsFailed when any
// item failed.
func printItems[T itemOutcome](io *stdio, cf *clientFlags, results []T, line func(T) string) error {
	failed := false
	for i, r := range results {
		if e := r.failure(); e != nil {
			failed = true
			reportItem(io.err, i+1, *e)
		}
	}
	if cf.json() {
		if err := writeJSON(io.out, map[string]any{"results": results}); err != nil {
			return err
		}
	} else {
		w := bufio.NewWriter(io.out)
		for _, r := range results {
			fmt.Fprintln(w, line(r))
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
