package vault

import (
	"context"
	"encoding/binary"

	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/vaultpb"
)

// Fingerprint versions. A deterministic scheme indexes each PAN under the
// fingerprint key version current when its token was made (bucketFP keys
// carry the version). After a rotation of the fingerprint key, tokenize
// looks a PAN up under every usable version, newest first, and answers an
// existing live token wherever it is indexed; the re-index job
// (reencrypt.go, reindex.go) adds the new version's entry for every
// existing token, and the minimum decryption version of a fingerprint key
// cannot be raised (retiring the old versions, which lookups then stop
// using) before that job has finished.

// olderUsableVersions returns the versions of rec below latest that
// lookups may still use (active or decrypt-only, at or above the minimum
// decryption version), newest first.
func olderUsableVersions(rec *vaultpb.KeyRecord, latest uint32) []uint32 {
	var out []uint32
	for _, v := range rec.GetVersions() {
		if v.GetVersion() < latest && checkState(rec, v, useDecrypt) == nil {
			out = append(out, v.GetVersion())
		}
	}
	// Versions are stored oldest first; newest first is the reverse, but
	// sort explicitly rather than rely on it.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] > out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// fingerprintVersion returns the fingerprint key version inside a bucketFP
// key of scheme sc (0 when fp is not one).
func fingerprintVersion(sc string, fp []byte) uint32 {
	if len(fp) < len(sc)+1+4 {
		return 0
	}
	return binary.BigEndian.Uint32(fp[len(sc)+1:])
}

// lookupOlderFingerprints looks the items idx (not indexed under version
// latest) up under the older usable fingerprint versions, newest first,
// and answers those that have a live token there (created=false). It
// returns the items it answered (or failed).
func (n *Node) lookupOlderFingerprints(ctx context.Context, e *schemeEntry, latest uint32, items []*tokItem, res []tokResult, idx []int) []int {
	if len(idx) == 0 {
		return nil
	}
	name := e.rec.GetFingerprintKey()
	rec, err := n.keyring.record(ctx, name, false)
	if err != nil {
		return failAll(res, idx, err)
	}
	var done []int
	remaining := idx
	var scratch []byte
	barrier := false
	for _, ver := range olderUsableVersions(rec, latest) {
		if len(remaining) == 0 {
			break
		}
		fk, err := n.keyring.resolve(ctx, name, ver, vaultpb.KeyPurpose_KEY_PURPOSE_FINGERPRINT, useDecrypt)
		if err != nil {
			return append(done, failAll(res, remaining, err)...)
		}
		ks := make([][]byte, 0, len(remaining))
		var asked []int
		for _, i := range remaining {
			fp, err := n.fingerprint(ctx, fk.ref, e.name(), items[i].pan, &scratch)
			if err != nil {
				res[i].err = err
				done = append(done, i)
				continue
			}
			ks = append(ks, fp)
			asked = append(asked, i)
		}
		if !barrier {
			// Read the older index as of now, as the latest one was.
			if err := n.store.ReadBarrier(ctx); err != nil {
				return append(done, failAll(res, asked, err)...)
			}
			barrier = true
		}
		got, err := n.store.GetMany(ctx, bucketFP, ks, raftstore.Stale)
		if err != nil {
			return append(done, failAll(res, asked, err)...)
		}
		var hits []int
		var tks [][]byte
		for j, i := range asked {
			if got[j].Found {
				hits = append(hits, i)
				tks = append(tks, tokenKey(e.name(), string(got[j].Value)))
			}
		}
		remaining = asked
		if len(tks) == 0 {
			continue
		}
		recs, err := n.store.GetMany(ctx, bucketTokens, tks, raftstore.Stale) // after the barrier
		if err != nil {
			return append(done, failAll(res, hits, err)...)
		}
		var answered []int
		for j, i := range hits {
			if !recs[j].Found {
				continue // deleted since: not an answer
			}
			trec, err := decodeToken(recs[j].Value)
			if err != nil {
				res[i].err = err
				answered = append(answered, i)
				continue
			}
			if n.expired(trec) {
				continue
			}
			tok := string(tks[j][len(e.name())+1:])
			res[i].resp = tokenResponse(e, items[i].pan, tok, trec.GetKeyVersion(), false, trec.GetExpireUnixNanos())
			answered = append(answered, i)
		}
		done = append(done, answered...)
		remaining = without(remaining, answered)
	}
	return done
}

// failAll sets err on every item of idx and returns idx.
func failAll(res []tokResult, idx []int, err error) []int {
	for _, i := range idx {
		res[i].err = err
	}
	return idx
}
