package vault

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/vaultpb"
)

// keyUse is what a request wants to do with a key version; it decides which
// states allow it.
type keyUse int

const (
	useEncrypt keyUse = iota // seal, FF1 tokenize, fingerprint HMAC: ACTIVE only
	useDecrypt               // open, FF1 detokenize: ACTIVE or DECRYPT_ONLY
	useSign                  // ACTIVE only
	useVerify                // ACTIVE or DECRYPT_ONLY
)

func (u keyUse) String() string {
	return [...]string{"encrypt", "decrypt", "sign", "verify"}[u]
}

// keyVersion is a resolved, loaded key version ready for an HSM call.
type keyVersion struct {
	ref  keys.KeyRef
	typ  keys.KeyType
	wrap *keys.WrappedKey // parsed header (public key for pairs)
}

// keyring mirrors the replicated "keys" bucket and keeps the local HSM in
// step with it: every usable version (active or decrypt-only) is loaded,
// retired and destroyed ones are unloaded. It loads from a raftstore
// subscription (so new keys appear without a request asking) and lazily on
// a request that needs a version it has not loaded yet.
//
// Loading happens outside the state machine: the FSM only stores the wrapped
// blobs. A version that fails to load (another master key, HSM trouble) is
// logged once and reported to each request that needs it.
//
// Safe for concurrent use.
type keyring struct {
	n *Node

	mu      sync.RWMutex
	recs    map[string]*vaultpb.KeyRecord
	loaded  map[keys.KeyRef]*keys.WrappedKey
	failed  map[keys.KeyRef]error // last load failure, logged once
	pending map[string]int        // names this node is creating right now

	sub *raftstore.Subscription
}

func newKeyring(n *Node) *keyring {
	return &keyring{
		n:       n,
		recs:    make(map[string]*vaultpb.KeyRecord),
		loaded:  make(map[keys.KeyRef]*keys.WrappedKey),
		failed:  make(map[keys.KeyRef]error),
		pending: make(map[string]int),
	}
}

// start subscribes to the keys bucket, then loads every key of the local
// state (Subscribe first, then Scan: no change can fall between them), and
// starts the loader goroutine.
func (k *keyring) start(ctx context.Context) error {
	k.sub = k.n.store.Subscribe(bucketKeys)
	if err := k.loadAll(ctx); err != nil {
		k.sub.Close()
		return err
	}
	k.n.wg.Add(1)
	go k.run()
	return nil
}

func (k *keyring) stop() {
	if k.sub != nil {
		k.sub.Close()
	}
}

// run applies subscription events until the subscription closes.
func (k *keyring) run() {
	defer k.n.wg.Done()
	for ev := range k.sub.C {
		if ev.Rescan {
			if err := k.loadAll(k.n.ctx); err != nil && !k.n.closed() {
				k.n.log.Error("reload keys", "err", err)
			}
			continue
		}
		for _, name := range ev.Keys {
			v, found, err := k.n.store.Get(k.n.ctx, bucketKeys, name, raftstore.Stale)
			if err != nil {
				if !k.n.closed() {
					k.n.log.Error("read replicated key", "key", string(name), "err", err)
				}
				continue
			}
			if !found {
				k.forget(string(name))
				continue
			}
			rec, err := decodeKey(v)
			if err != nil {
				k.n.log.Error("replicated key record", "key", string(name), "err", err)
				continue
			}
			k.install(k.n.ctx, rec)
		}
	}
}

// loadAll scans the local copy of the keys bucket and installs every record.
func (k *keyring) loadAll(ctx context.Context) error {
	var after []byte
	for {
		kvs, more, err := k.n.store.Scan(ctx, bucketKeys, raftstore.ScanOptions{After: after, Limit: 1000, Mode: raftstore.Stale})
		if err != nil {
			return fmt.Errorf("scan keys: %w", err)
		}
		for _, kv := range kvs {
			rec, err := decodeKey(kv.Value)
			if err != nil {
				k.n.log.Error("replicated key record", "key", string(kv.Key), "err", err)
				continue
			}
			k.install(ctx, rec)
		}
		if !more || len(kvs) == 0 {
			return nil
		}
		after = kvs[len(kvs)-1].Key
	}
}

// install records rec and brings the HSM in step with it, unless this node
// is creating the key right now (CreateKey installs it when done). A copy
// older than the installed one (lower revision: a linearizable read that
// raced the watcher) is ignored, so it cannot bring a destroyed or retired
// version back.
func (k *keyring) install(ctx context.Context, rec *vaultpb.KeyRecord) {
	k.mu.Lock()
	if cur := k.recs[rec.GetName()]; cur != nil && rec.GetRevision() < cur.GetRevision() {
		k.mu.Unlock()
		return
	}
	k.recs[rec.GetName()] = rec
	skip := k.pending[rec.GetName()] > 0
	k.mu.Unlock()
	if skip {
		return
	}
	for _, v := range rec.GetVersions() {
		ref := keys.KeyRef{ID: rec.GetName(), Version: v.GetVersion()}
		if usableState(v.GetState()) {
			_ = k.ensureLoaded(ctx, ref, v.GetWrapped())
		} else {
			k.unload(ref)
		}
	}
}

// forget drops a key that disappeared from the state (not done by this
// version, but a restored snapshot may lack it).
func (k *keyring) forget(name string) {
	k.mu.Lock()
	rec := k.recs[name]
	delete(k.recs, name)
	k.mu.Unlock()
	for _, v := range rec.GetVersions() {
		k.unload(keys.KeyRef{ID: name, Version: v.GetVersion()})
	}
}

func usableState(s vaultpb.KeyState) bool {
	return s == vaultpb.KeyState_KEY_STATE_ACTIVE || s == vaultpb.KeyState_KEY_STATE_DECRYPT_ONLY
}

// ensureLoaded loads blob into the HSM unless ref is already loaded. Failures
// are logged the first time they happen for ref and returned wrapped in
// ErrKeyUnavailable.
func (k *keyring) ensureLoaded(ctx context.Context, ref keys.KeyRef, blob []byte) error {
	k.mu.RLock()
	_, ok := k.loaded[ref]
	k.mu.RUnlock()
	if ok {
		return nil
	}
	wk, err := keys.ParseWrappedKey(blob)
	if err == nil && wk.Ref() != ref {
		err = fmt.Errorf("%w: blob names %s", keys.ErrMalformedBlob, wk.Ref())
	}
	loadedNow := false
	if err == nil {
		_, err = k.n.hsm.LoadWrapped(ctx, blob)
		loadedNow = err == nil
	}
	k.mu.Lock()
	if loadedNow && !k.usableLocked(ref) {
		// The version was retired or destroyed (or the key forgotten)
		// while it loaded, and its unload may have run before: take it
		// out again rather than leave it in the HSM.
		k.mu.Unlock()
		if uerr := k.n.hsm.Unload(ref); uerr != nil && !errors.Is(uerr, keys.ErrKeyNotFound) {
			k.n.log.Error("unload key", "key", ref.String(), "err", uerr)
		}
		return fmt.Errorf("%w: %s changed state while loading", ErrKeyState, ref)
	}
	defer k.mu.Unlock()
	if err != nil {
		prev, seen := k.failed[ref]
		k.failed[ref] = err
		if !seen || prev.Error() != err.Error() {
			attrs := []any{"key", ref.String(), "err", err}
			if wk != nil {
				attrs = append(attrs, "wrapped_under_kcv", wk.MasterKCV.String())
			}
			if kcv, ok := k.n.hsm.MasterKeyKCV(); ok {
				attrs = append(attrs, "local_master_kcv", kcv.String())
			}
			k.n.log.Error("cannot load key into hsm", attrs...)
		}
		return fmt.Errorf("%w: %s: %w", ErrKeyUnavailable, ref, err)
	}
	delete(k.failed, ref)
	k.loaded[ref] = wk
	return nil
}

// usableLocked reports whether the installed record of ref's key has ref
// in a state that keeps it loaded. A key this node is creating (no record
// yet) counts as usable. k.mu must be held.
func (k *keyring) usableLocked(ref keys.KeyRef) bool {
	rec := k.recs[ref.ID]
	if rec == nil {
		return k.pending[ref.ID] > 0
	}
	for _, v := range rec.GetVersions() {
		if v.GetVersion() == ref.Version {
			return usableState(v.GetState())
		}
	}
	// A version newer than the installed record (resolve refreshes the
	// record before loading such a version; a concurrent older copy was
	// ignored): keep it.
	return ref.Version > rec.GetLatestVersion()
}

// unload removes ref from the HSM if this keyring loaded it.
func (k *keyring) unload(ref keys.KeyRef) {
	k.mu.Lock()
	_, ok := k.loaded[ref]
	delete(k.loaded, ref)
	delete(k.failed, ref)
	k.mu.Unlock()
	if ok {
		if err := k.n.hsm.Unload(ref); err != nil && !errors.Is(err, keys.ErrKeyNotFound) {
			k.n.log.Error("unload key", "key", ref.String(), "err", err)
		}
	}
}

// record returns the key record of name: the cached one, or a linearizable
// read when it is unknown here (or when refresh is set, because a request
// needs a version newer than the cached record knows).
func (k *keyring) record(ctx context.Context, name string, refresh bool) (*vaultpb.KeyRecord, error) {
	if !refresh {
		k.mu.RLock()
		rec := k.recs[name]
		k.mu.RUnlock()
		if rec != nil {
			return rec, nil
		}
	}
	if err := checkName("key", name); err != nil {
		return nil, err
	}
	v, found, err := k.n.store.Get(ctx, bucketKeys, []byte(name), raftstore.Linearizable)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrKeyNotFound // the name is the client's: not echoed
	}
	rec, err := decodeKey(v)
	if err != nil {
		return nil, err
	}
	k.install(ctx, rec)
	return rec, nil
}

// resolve returns the loaded key version of name for use. version 0 means
// the latest. purpose must match the key's (else ErrWrongPurpose); the
// version's state must allow use (else ErrKeyState).
func (k *keyring) resolve(ctx context.Context, name string, version uint32, purpose vaultpb.KeyPurpose, use keyUse) (keyVersion, error) {
	rec, err := k.record(ctx, name, false)
	if err != nil {
		return keyVersion{}, err
	}
	vr := findVersion(rec, version)
	if vr == nil && version > rec.GetLatestVersion() {
		// A version made after our cached record (a rotation that has not
		// reached this node's cache yet).
		if rec, err = k.record(ctx, name, true); err != nil {
			return keyVersion{}, err
		}
		vr = findVersion(rec, version)
	}
	if vr == nil {
		return keyVersion{}, fmt.Errorf("%w: no version %d", ErrKeyNotFound, version)
	}
	if purpose != vaultpb.KeyPurpose_KEY_PURPOSE_UNSPECIFIED && rec.GetPurpose() != purpose {
		return keyVersion{}, fmt.Errorf("%w: key %q is for %s, not %s", ErrWrongPurpose, name,
			purposeName(rec.GetPurpose()), purposeName(purpose))
	}
	if err := checkState(rec, vr, use); err != nil {
		return keyVersion{}, err
	}
	ref := keys.KeyRef{ID: name, Version: vr.GetVersion()}
	if err := k.ensureLoaded(ctx, ref, vr.GetWrapped()); err != nil {
		return keyVersion{}, err
	}
	k.mu.RLock()
	wk := k.loaded[ref]
	k.mu.RUnlock()
	if wk == nil { // unloaded concurrently (state change)
		return keyVersion{}, fmt.Errorf("%w: %s was unloaded", ErrKeyState, ref)
	}
	return keyVersion{ref: ref, typ: keys.KeyType(rec.GetKeyType()), wrap: wk}, nil
}

func findVersion(rec *vaultpb.KeyRecord, version uint32) *vaultpb.KeyVersionRecord {
	if version == 0 {
		version = rec.GetLatestVersion()
	}
	for _, v := range rec.GetVersions() {
		if v.GetVersion() == version {
			return v
		}
	}
	return nil
}

// checkState is the one place that says which key states allow which use.
func checkState(rec *vaultpb.KeyRecord, v *vaultpb.KeyVersionRecord, use keyUse) error {
	st := v.GetState()
	ok := false
	switch use {
	case useEncrypt, useSign:
		ok = st == vaultpb.KeyState_KEY_STATE_ACTIVE
	case useDecrypt, useVerify:
		ok = usableState(st) && v.GetVersion() >= rec.GetMinDecryptionVersion()
	}
	if !ok {
		switch {
		case st == vaultpb.KeyState_KEY_STATE_DESTROYED:
			return fmt.Errorf("%w: %s/v%d was destroyed, cannot %s", ErrKeyVersionDestroyed, rec.GetName(), v.GetVersion(), use)
		case (use == useDecrypt || use == useVerify) &&
			(st == vaultpb.KeyState_KEY_STATE_RETIRED || v.GetVersion() < rec.GetMinDecryptionVersion()):
			return fmt.Errorf("%w: %s/v%d is below the minimum decryption version %d, cannot %s",
				ErrKeyVersionRetired, rec.GetName(), v.GetVersion(), rec.GetMinDecryptionVersion(), use)
		}
		return fmt.Errorf("%w: %s/v%d is %s, cannot %s", ErrKeyState, rec.GetName(), v.GetVersion(), stateName(st), use)
	}
	return nil
}

// purposeName is p's name as ceremonies print it ("pan-encryption"), so a
// key's purpose is spelled one way in errors, logs and ceremony outcomes.
func purposeName(p vaultpb.KeyPurpose) string {
	if cp := ceremony.Purpose(p); cp.Valid() {
		return cp.String()
	}
	return "unspecified"
}

func stateName(s vaultpb.KeyState) string {
	switch s {
	case vaultpb.KeyState_KEY_STATE_ACTIVE:
		return "active"
	case vaultpb.KeyState_KEY_STATE_DECRYPT_ONLY:
		return "decrypt-only"
	case vaultpb.KeyState_KEY_STATE_RETIRED:
		return "retired"
	case vaultpb.KeyState_KEY_STATE_DESTROYED:
		return "destroyed"
	}
	return "unspecified"
}

// beginCreate marks name as being created by this node, so that the loader
// does not race CreateKey's own generated key. The returned func ends it.
func (k *keyring) beginCreate(name string) func() {
	k.mu.Lock()
	k.pending[name]++
	k.mu.Unlock()
	return func() {
		k.mu.Lock()
		k.pending[name]--
		if k.pending[name] == 0 {
			delete(k.pending, name)
		}
		k.mu.Unlock()
	}
}

// markLoaded records that ref is loaded in the HSM (by GenerateKey).
func (k *keyring) markLoaded(ref keys.KeyRef, wk *keys.WrappedKey) {
	k.mu.Lock()
	k.loaded[ref] = wk
	delete(k.failed, ref)
	k.mu.Unlock()
}
