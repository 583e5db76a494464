package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/panvault/panvault/vault/audit"
)

// newAuditCmd holds the commands that work on a node's audit log file
// (vault/audit, format in vault/audit/FORMAT.md). They read the file
// directly and need no connection to a node.
func newAuditCmd(io *stdio, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Work with a node's hash-chained audit log"}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify FILE",
		Short: "Check every line of an audit log: seq, chain and hashes",
		Long: `Check every line of an audit log file: canonical form, each line's hash, seq
contiguous from 1, and each prev equal to the hash of the line before. Prints
the number of entries, the first and last times and the last hash; exits 1
naming the first line that fails.

A chain cannot show that lines were cut off the end: compare the entries and
last hash with a value recorded elsewhere.`,
		Args: func(c *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(1)(c, args); err != nil {
				return &usageError{err}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			return auditVerify(io, cf, args[0])
		},
	})
	return cmd
}

// auditSummaryJSON is `audit verify` in --output json.
type auditSummaryJSON struct {
	File     string `json:"file"`
	Entries  uint64 `json:"entries"`
	First    string `json:"first,omitempty"`
	Last     string `json:"last,omitempty"`
	LastHash string `json:"last_hash"`
}

func auditVerify(io *stdio, cf *clientFlags, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sum, err := audit.Verify(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	out := auditSummaryJSON{File: path, Entries: sum.Entries, LastHash: sum.LastHash}
	if sum.Entries > 0 {
		out.First = sum.First.Format(time.RFC3339Nano)
		out.Last = sum.Last.Format(time.RFC3339Nano)
	}
	if cf.json() {
		return writeJSON(io.out, out)
	}
	fmt.Fprintf(io.out, "%s: chain verified\n", path)
	fmt.Fprintf(io.out, "entries:   %d\n", out.Entries)
	if sum.Entries > 0 {
		fmt.Fprintf(io.out, "first:     %s\n", out.First)
		fmt.Fprintf(io.out, "last:      %s\n", out.Last)
	}
	fmt.Fprintf(io.out, "last hash: %s\n", out.LastHash)
	return nil
}
