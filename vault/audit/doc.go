// Package audit is panvault's per-node audit log: an append-only file of
// JSON lines, each carrying the SHA-256 of the one before, written with
// group commit.
//
// Why it exists. The security rules (DESIGN.md) say every detokenize, sign
// and administrative action is written to a hash-chained audit log before
// the answer leaves, and that the request fails when the log cannot be
// written. So Append returns only after write and fdatasync, and any error
// from it must fail the request.
//
// Why a hash chain. Each record holds prev, the hash of the record before,
// and hash, the SHA-256 of its own canonical bytes. Changing, deleting,
// inserting or reordering a line breaks the chain at that line, which
// Verify names. A chain does not stop someone who can rewrite the whole
// file from rewriting it consistently, nor show that the tail was cut off:
// for that, record Log.Head (seq and hash) somewhere the node's operator
// cannot rewrite (an Anchor; the vault replicates them through Raft, keyed
// by Log.Chain) and pass the anchors to Verify. FORMAT.md describes the
// bytes so an auditor can check a log with other tools.
//
// Why per node and not in Raft. The log records what this node answered;
// it must be durable before the answer, must not depend on a quorum being
// up (a failing cluster is exactly when the trail matters), and must not
// grow the replicated state. Each node keeps its own file; collecting them
// is the operator's job.
//
// Why group commit. An fdatasync costs about 200 µs on our machines; one per
// call would cap a node at a few thousand audited calls per second. A single
// committer goroutine takes every request queued while the previous sync
// ran, writes them with one write(2) and makes them durable with one
// fdatasync(2). Options.MaxDelay lets it wait briefly for the appenders of
// the previous batch to come back, but only when there was more than one:
// a lone caller never waits.
//
// Why a failure latches. After a failed fdatasync Linux may drop the dirty
// pages and mark them clean, so a later sync can succeed without the data
// being on disk, and after a failed write the file may end in a partial
// line. The Log therefore refuses every later Append (ErrFailed) until it is
// closed and reopened; Open re-reads the tail, truncates a torn line and
// continues the chain from the last complete record. An entry whose Append
// failed may still be in the file: the log records what was decided, and
// the caller answered with an error instead.
//
// Why masked only. The file is read by people who must never see card data.
// Append refuses a masked or reason field holding a PAN-like run of 12 or
// more digits (ErrUnmasked) as a last line of defence; callers pass masked
// forms (card.MaskDigits) and names already masked where they hold such a
// run.
//
// Why 0600 and a lock. The file is the node's own: Open creates it 0600 in
// a 0700 directory, refuses a file with any other mode or owner, and takes
// an exclusive flock so two processes cannot fork the chain.
//
// Record times are taken when Append is called, so they are not strictly
// increasing across concurrent callers; seq gives the order.
package audit
