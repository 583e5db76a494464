package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/audit"
)

// newAuditCmd holds the commands that work on a node's audit log file
// (vault/audit, format in vault/audit/FORMAT.md) and on the anchors the
// nodes replicate. verify reads the file directly; it connects to a node
// only with --cluster.
func newAuditCmd(io *stdio, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Work with a node's hash-chained audit log and its anchors"}
	var anchorFlags []string
	var fromCluster bool
	verify := &cobra.Command{
		Use:   "verify FILE...",
		Short: "Check every line of an audit log: seq, chain, hashes and anchors",
		Long: `Check every line of an audit log file: canonical form, each line's hash, seq
contiguous, and each prev equal to the hash of the line before. Prints the
number of entries, the first and last times and the last hash; exits 1
naming the first line that fails.

A rotated log (audit_max_bytes) is several files: FILE.<first seq> for each
rotated one and FILE for the current one. Give them in seq order
(FILE.* FILE sorts so): each must continue the one before (next seq, prev =
its last hash). A first file that starts past seq 1 is checked from its own
first line, and the output says so.

A chain alone cannot show that lines were cut off the end, or that a file
was rewritten from some line on with every later hash recomputed. Anchors
can: each node records the seq and hash of its current file's head through
Raft once a minute. --cluster fetches every anchor of each file's chain
(the hash of its first record) from the nodes of PANVAULT_ADDR (admin
identity) and checks the file against all of them; --anchor SEQ:HASH checks
one you recorded yourself. A record anchored once must still be there with
the same hash. With --cluster, a file whose chain the cluster never anchored
(an empty file, one younger than an anchor interval, or one rewritten from
its first line) fails: nothing vouches for it.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			anchors, err := parseAnchors(anchorFlags)
			if err != nil {
				return err
			}
			return auditVerify(c, io, cf, args, anchors, fromCluster)
		},
	}
	verify.Flags().StringArrayVar(&anchorFlags, "anchor", nil, "an anchor SEQ:HASH the file must match (repeatable)")
	verify.Flags().BoolVar(&fromCluster, "cluster", false, "check the file against every anchor of its chain the cluster holds (admin)")

	var chain, node string
	anchors := &cobra.Command{
		Use:   "anchors",
		Short: "List the audit anchors the cluster holds (admin)",
		Long: `List the audit anchors the cluster holds, by chain (the hash of a log file's
first record) then seq: which node's log held which record with which hash,
and when the node recorded it.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			all, err := fetchAnchors(c, cf, chain, node)
			if err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, all)
			}
			tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tCHAIN\tSEQ\tHASH\tRECORDED")
			for _, a := range all.GetAnchors() {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", a.GetNodeId(), a.GetChain()[:min(16, len(a.GetChain()))], a.GetSeq(), a.GetHash(),
					a.GetRecordedAt().AsTime().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	anchors.Flags().StringVar(&chain, "chain", "", "only this chain (the hash of a log's first record, 64 hex digits)")
	anchors.Flags().StringVar(&node, "node", "", "only anchors recorded by this node")
	cmd.AddCommand(verify, anchors)
	return cmd
}

// errNotAnchored: audit verify --cluster found nothing to check the file
// against (a verification that checked no anchor does not pass).
var errNotAnchored = errors.New("not anchored")

// parseAnchors parses --anchor values SEQ:HASH.
func parseAnchors(vals []string) ([]audit.Anchor, error) {
	var out []audit.Anchor
	for _, v := range vals {
		seqText, hash, ok := strings.Cut(v, ":")
		seq, err := strconv.ParseUint(seqText, 10, 64)
		if _, herr := hex.DecodeString(hash); !ok || err != nil || seq == 0 || len(hash) != 64 || herr != nil || strings.ToLower(hash) != hash {
			return nil, &usageError{fmt.Errorf("--anchor %q: want SEQ:HASH, a record number from 1 and 64 lower-case hex digits", v)}
		}
		out = append(out, audit.Anchor{Seq: seq, Hash: hash})
	}
	return out, nil
}

// clusterAnchors fetches every anchor of path's chain from the cluster.
func clusterAnchors(c *cobra.Command, cf *clientFlags, path string) ([]audit.Anchor, error) {
	chain, err := audit.FileChain(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if chain == "" {
		return nil, fmt.Errorf("%s: %w: the file is empty, and no anchor can vouch for an empty file", path, errNotAnchored)
	}
	all, err := fetchAnchors(c, cf, chain, "")
	if err != nil {
		return nil, err
	}
	if len(all.GetAnchors()) == 0 {
		// A chain is named by its first record: a file rewritten from its
		// first line on has a chain no node ever anchored.
		return nil, fmt.Errorf("%s: %w: the cluster holds no anchor of this file's chain %s: the file is younger than one anchor interval, or it is not a log a node wrote (`panvault audit anchors --node ID` lists what each node anchored)",
			path, errNotAnchored, chain[:16])
	}
	out := make([]audit.Anchor, len(all.GetAnchors()))
	for i, a := range all.GetAnchors() {
		out[i] = audit.Anchor{Seq: a.GetSeq(), Hash: a.GetHash()}
	}
	return out, nil
}

// anchorPageSize asks for the server's largest page (1,000): a chain gains
// an anchor a minute, and each page is a linearizable read and an audit
// record of its own.
const anchorPageSize = 1000

// fetchAnchors lists every anchor of chain and node ("": all), all pages.
func fetchAnchors(c *cobra.Command, cf *clientFlags, chain, node string) (*pb.ListAuditAnchorsResponse, error) {
	all := &pb.ListAuditAnchorsResponse{}
	err := listAll(c, cf, func(ctx context.Context, cc *grpc.ClientConn, token string) (string, error) {
		resp, err := pb.NewClusterServiceClient(cc).ListAuditAnchors(ctx, &pb.ListAuditAnchorsRequest{
			Chain: chain, NodeId: node, PageToken: token, PageSize: anchorPageSize})
		all.Anchors = append(all.Anchors, resp.GetAnchors()...)
		return resp.GetNextPageToken(), err
	})
	return all, err
}

// auditSummaryJSON is `audit verify` in --output json: one object for one
// file, an array of them for several.
type auditSummaryJSON struct {
	File     string `json:"file"`
	Entries  uint64 `json:"entries"`
	FirstSeq uint64 `json:"first_seq,omitempty"`
	LastSeq  uint64 `json:"last_seq,omitempty"`
	First    string `json:"first,omitempty"`
	Last     string `json:"last,omitempty"`
	LastHash string `json:"last_hash"`
	// Continues is set when the first file given starts past seq 1: the
	// records before it were not checked.
	Continues bool `json:"continues,omitempty"`
	// Anchors is how many anchors the file was checked against;
	// AnchoredSeq the highest seq among them.
	Anchors     int    `json:"anchors"`
	AnchoredSeq uint64 `json:"anchored_seq,omitempty"`
}

// auditVerify checks files in order as one chain, each against the anchors
// given and, with fromCluster, those of its own chain.
func auditVerify(c *cobra.Command, io *stdio, cf *clientFlags, paths []string, given []audit.Anchor, fromCluster bool) error {
	var outs []auditSummaryJSON
	var start *audit.Anchor // the previous file's last record
	for i, path := range paths {
		// The anchors given on the command line that fall in this file
		// (the last file also takes those past its end: a cut-off end).
		firstSeq, lastSeq, err := audit.FileSeqs(path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		var anchors []audit.Anchor
		for _, a := range given {
			if a.Seq >= firstSeq && (a.Seq <= lastSeq || i == len(paths)-1) {
				anchors = append(anchors, a)
			}
		}
		if fromCluster {
			fetched, err := clusterAnchors(c, cf, path)
			if err != nil {
				return err
			}
			anchors = append(anchors, fetched...)
		}
		sum, continues, err := verifyOne(path, start, anchors)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out := auditSummaryJSON{File: path, Entries: sum.Entries, FirstSeq: sum.FirstSeq, LastSeq: sum.LastSeq,
			LastHash: sum.LastHash, Continues: continues}
		for _, a := range anchors {
			if a.Seq >= sum.FirstSeq && a.Seq <= sum.LastSeq && sum.Entries > 0 {
				out.Anchors++
				out.AnchoredSeq = max(out.AnchoredSeq, a.Seq)
			}
		}
		if sum.Entries > 0 {
			out.First = sum.First.Format(time.RFC3339Nano)
			out.Last = sum.Last.Format(time.RFC3339Nano)
		}
		outs = append(outs, out)
		start = &audit.Anchor{Seq: sum.LastSeq, Hash: sum.LastHash}
	}
	if cf.json() {
		if len(outs) == 1 {
			return writeJSON(io.out, outs[0])
		}
		return writeJSON(io.out, outs)
	}
	for _, out := range outs {
		fmt.Fprintf(io.out, "%s: chain verified\n", out.File)
		if out.Continues {
			fmt.Fprintf(io.out, "starts:    at seq %d, continuing a file not given (not checked)\n", out.FirstSeq)
		}
		fmt.Fprintf(io.out, "entries:   %d\n", out.Entries)
		if out.Entries > 0 {
			fmt.Fprintf(io.out, "first:     %s\n", out.First)
			fmt.Fprintf(io.out, "last:      %s\n", out.Last)
		}
		fmt.Fprintf(io.out, "last hash: %s\n", out.LastHash)
		if out.Anchors > 0 {
			fmt.Fprintf(io.out, "anchors:   %d matched (highest seq %d)\n", out.Anchors, out.AnchoredSeq)
		} else {
			fmt.Fprintln(io.out, "anchors:   none checked (a cut-off end cannot be seen without them: --cluster)")
		}
	}
	return nil
}

// verifyOne checks one file: the first one given (start nil) from its own
// first line (strictly from seq 1 when it starts there), a later one as
// continuing start. continues says the first file starts past seq 1.
func verifyOne(path string, start *audit.Anchor, anchors []audit.Anchor) (audit.Summary, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return audit.Summary{}, false, err
	}
	defer f.Close()
	sum, err := audit.VerifyFrom(f, start, anchors...)
	return sum, start == nil && sum.FirstSeq > 1, err
}
