package audit

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// Summary describes a log that verified.
type Summary struct {
	Entries     uint64    // records in the file
	FirstSeq    uint64    // seq of its first record (0 when empty)
	First, Last time.Time // times of the first and last records (zero when empty)
	Chain       string    // hash of the first record: the file's anchor chain ("" when empty)
	// LastSeq and LastHash are the last record's; for an empty file, the
	// start's (VerifyFrom) or 0 and 64 zeros, so that the next file can
	// continue from them.
	LastSeq  uint64
	LastHash string
}

// Anchor is a record's seq and hash as recorded outside the log (Log.Head
// at some moment; a vault node replicates its own through Raft).
type Anchor struct {
	Seq  uint64
	Hash string // lower-case hex SHA-256
}

// Verify reads a whole log file that starts the chain and checks every
// line: canonical form, its own hash, seq contiguous from 1, and prev equal
// to the previous record's hash (64 zeros for the first). The first failure
// is returned as a *CorruptError (errors.Is ErrCorrupt) naming the line;
// read errors are returned as they are. An empty log verifies with zero
// entries.
//
// A chain alone cannot tell a log whose last records were cut off from a
// shorter log; anchors can. The record of each anchor's seq must carry the
// anchor's hash (else a *CorruptError naming it), and a log that ends before
// an anchor's seq fails with ErrCutOff. An anchor of seq 0 holds for every
// log.
func Verify(r io.Reader, anchors ...Anchor) (Summary, error) {
	return VerifyFrom(r, &Anchor{Hash: hex.EncodeToString(zeroHash[:])}, anchors...)
}

// VerifyFrom is Verify for a file that need not start the chain (a file of
// a rotated log): its first record must have seq start.Seq+1 and prev
// start.Hash (the last record of the file before it). With start nil the
// first record's seq and prev are taken as they are (a file checked on its
// own), except that a record of seq 1 must have the zero prev. Anchors of
// seqs before the file's first record are not this file's and are ignored;
// those past its last record mean records were cut off (ErrCutOff).
func VerifyFrom(r io.Reader, start *Anchor, anchors ...Anchor) (Summary, error) {
	want := make(map[uint64]string, len(anchors))
	var maxSeq uint64
	for _, a := range anchors {
		if a.Seq == 0 {
			continue
		}
		if h, ok := want[a.Seq]; ok && h != a.Hash {
			return Summary{}, fmt.Errorf("%w: two anchors of seq %d with different hashes", ErrCorrupt, a.Seq)
		}
		want[a.Seq] = a.Hash
		maxSeq = max(maxSeq, a.Seq)
	}
	s, err := verifyChain(r, start, want)
	if err == nil && s.LastSeq < maxSeq {
		err = fmt.Errorf("%w: the log ends at seq %d, an anchor names seq %d", ErrCutOff, s.LastSeq, maxSeq)
	}
	return s, err
}

// verifyChain is VerifyFrom without the end check; anchors maps a seq to
// the hash its record must carry.
func verifyChain(r io.Reader, start *Anchor, anchors map[uint64]string) (Summary, error) {
	s := Summary{LastHash: hex.EncodeToString(zeroHash[:])}
	br := bufio.NewReaderSize(r, 64<<10)
	var base uint64 // seq before the first line
	var prev string // hash the next line's prev must equal
	if start != nil {
		base, prev = start.Seq, start.Hash
		s.LastSeq, s.LastHash = start.Seq, start.Hash
	}
	var n uint64 // lines read
	var buf []byte
	for {
		b, complete, err := readLine(br, buf[:0])
		buf = b
		if err != nil {
			return s, fmt.Errorf("audit: read line %d: %w", n+1, err)
		}
		if len(b) == 0 && complete == lineEOF {
			return s, nil
		}
		n++
		switch complete {
		case lineTooLong:
			return s, corrupt(n, "longer than any record")
		case lineEOF:
			return s, corrupt(n, "incomplete (no newline at the end of the file)")
		}
		l, _, err := parseLine(n, b) // checks l.Hash is the record's own hash
		if err != nil {
			return s, err
		}
		if n == 1 && start == nil {
			if l.Seq == 0 {
				return s, corrupt(n, "seq 0")
			}
			base, prev = l.Seq-1, l.Prev
			if l.Seq == 1 {
				prev = hex.EncodeToString(zeroHash[:])
			}
		}
		if l.Seq != base+n {
			return s, corrupt(n, "seq %d, want %d (a line is missing, duplicated or out of order)", l.Seq, base+n)
		}
		if l.Prev != prev {
			if n == 1 {
				return s, corrupt(n, "prev does not match the hash of the record before this file's first (seq %d)", base)
			}
			return s, corrupt(n, "prev does not match the hash of line %d (a line is missing, changed or out of order)", n-1)
		}
		t, err := time.Parse(time.RFC3339Nano, l.Time)
		if err != nil || t.Location() != time.UTC || t.Format(time.RFC3339Nano) != l.Time {
			return s, corrupt(n, "time is not RFC 3339 UTC in canonical form")
		}
		if h, ok := anchors[l.Seq]; ok && h != l.Hash {
			return s, corrupt(n, "hash differs from the anchor recorded for seq %d (the log was rewritten from here or earlier)", l.Seq)
		}
		if n == 1 {
			s.First, s.FirstSeq, s.Chain = t, l.Seq, l.Hash
		}
		s.Entries, s.LastSeq, s.Last, s.LastHash = n, l.Seq, t, l.Hash
		prev = l.Hash
	}
}

type lineEnd int

const (
	lineNewline lineEnd = iota // ended by "\n" (not included)
	lineEOF                    // the input ended first
	lineTooLong                // longer than maxLineBytes
)

// readLine reads one line into dst, never holding more than maxLineBytes.
func readLine(br *bufio.Reader, dst []byte) ([]byte, lineEnd, error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if len(dst)+len(chunk) > maxLineBytes {
			return dst, lineTooLong, nil
		}
		dst = append(dst, chunk...)
		switch err {
		case nil:
			return bytes.TrimSuffix(dst, []byte{'\n'}), lineNewline, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			return dst, lineEOF, nil
		default:
			return dst, lineEOF, err
		}
	}
}
