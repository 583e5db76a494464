package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/scheme"
	"github.com/panvault/panvault/vault/vaultpb"
)

// schemeEntry is a compiled scheme with its stored record.
type schemeEntry struct {
	rec *vaultpb.SchemeRecord
	s   *scheme.Scheme
}

func (e *schemeEntry) name() string { return e.rec.GetName() }

// schemeCache holds compiled schemes. Schemes are never deleted; a miss
// is resolved with a linearizable read, so a scheme acknowledged on any
// node is found on every node. A scheme's key can change (schemekey.go):
// the cache follows the replicated bucket and drops an entry when its
// record changes. A lagging entry is harmless: token records name the key
// that sealed them, and the re-encryption job's verification pass reads
// the scheme afresh. Safe for concurrent use.
type schemeCache struct {
	n   *Node
	sub *raftstore.Subscription

	mu    sync.RWMutex
	m     map[string]*schemeEntry
	epoch uint64 // bumped by every invalidation; a read older than it is not cached
}

func newSchemeCache(n *Node) *schemeCache {
	return &schemeCache{n: n, m: make(map[string]*schemeEntry)}
}

// start follows the schemes bucket until the node closes.
func (c *schemeCache) start() {
	c.sub = c.n.store.Subscribe(bucketSchemes)
	c.n.wg.Add(1)
	go func() {
		defer c.n.wg.Done()
		for ev := range c.sub.C {
			c.mu.Lock()
			if ev.Rescan {
				clear(c.m)
			}
			for _, name := range ev.Keys {
				delete(c.m, string(name))
			}
			c.epoch++
			c.mu.Unlock()
		}
	}()
}

func (c *schemeCache) stop() {
	if c.sub != nil {
		c.sub.Close()
	}
}

// get returns the scheme name (field names the request field for errors).
func (c *schemeCache) get(ctx context.Context, field, name string) (*schemeEntry, error) {
	c.mu.RLock()
	e, epoch := c.m[name], c.epoch
	c.mu.RUnlock()
	if e != nil {
		return e, nil
	}
	if err := checkName(field, name); err != nil {
		return nil, err
	}
	v, found, err := c.n.store.Get(ctx, bucketSchemes, []byte(name), raftstore.Linearizable)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrSchemeNotFound // the name is the client's: not echoed
	}
	return c.add(v, epoch)
}

// currentEpoch returns the invalidation epoch, to be read before the store
// read whose result is passed to add.
func (c *schemeCache) currentEpoch() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.epoch
}

// add compiles a stored scheme record read at epoch and caches it, unless
// an invalidation came since (the record may be older than the change that
// caused it) or a newer revision is cached.
func (c *schemeCache) add(v []byte, epoch uint64) (*schemeEntry, error) {
	rec, err := decodeScheme(v)
	if err != nil {
		return nil, err
	}
	def, err := definitionFromRecord(rec)
	if err != nil {
		return nil, err
	}
	s, err := scheme.New(def)
	if err != nil {
		return nil, fmt.Errorf("%w: scheme %q no longer validates: %v", ErrCorruptRecord, rec.GetName(), err)
	}
	e := &schemeEntry{rec: rec, s: s}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[rec.GetName()]; old != nil && old.rec.GetRevision() >= rec.GetRevision() {
		return old, nil
	}
	if epoch == c.epoch {
		c.m[rec.GetName()] = e
	}
	return e, nil
}

// relabel returns err with every field violation's field prefixed (for
// example "keep_leading" becomes "scheme.keep_leading"), keeping the
// sentinels err wraps for errors.Is.
func relabel(err error, prefix string) error {
	res := card.RuleErrors(err)
	if len(res) == 0 {
		return err
	}
	out := make([]error, 0, len(res))
	for _, r := range res {
		if !strings.HasPrefix(r.Field, prefix) {
			r = r.WithField(prefix + r.Field)
		}
		out = append(out, r)
	}
	return fmt.Errorf("%w: %w", scheme.ErrInvalidDefinition, errors.Join(out...))
}

// CreateScheme defines a scheme from its API form (create_time is ignored).
// The keys it names must already exist with the right purpose: key an
// AES256 key for PAN_ENCRYPTION (vaulted) or FPE (ff1), fingerprint_key an
// HMAC_SHA256 key for FINGERPRINT (deterministic vaulted schemes); otherwise
// it fails with ErrKeyNotFound or ErrWrongPurpose (FAILED_PRECONDITION).
//
// It is idempotent by name: when an identical scheme exists it is returned
// with created false; a different one with this name is ErrAlreadyExists.
// Validation errors wrap scheme.ErrInvalidDefinition with violations named
// "scheme.<field>".
func (n *Node) CreateScheme(ctx context.Context, def *pb.Scheme) (*pb.Scheme, bool, error) {
	if def == nil {
		return nil, false, fieldError("scheme", scheme.RuleRequired, "is required")
	}
	d, err := definitionFromAPI(def)
	if err == nil {
		err = d.Validate()
	}
	if err != nil {
		return nil, false, relabel(err, "scheme.")
	}
	d = d.Canonical()
	if err := n.checkSchemeKeys(ctx, d); err != nil {
		return nil, false, err
	}
	rec := schemeRecord(d, n.now())
	v, err := encodeRecord(rec)
	if err != nil {
		return nil, false, err
	}
	epoch := n.schemes.currentEpoch()
	res, err := n.store.Propose(ctx, raftstore.PutIfAbsent(bucketSchemes, []byte(d.Name), v))
	if err != nil {
		return nil, false, err
	}
	if res.Applied {
		if _, err := n.schemes.add(v, epoch); err != nil {
			return nil, false, err
		}
		n.log.Info("scheme created", "scheme", d.Name, "mode", d.Mode.String(), "key", d.KeyName)
		return schemeToAPI(rec), true, nil
	}
	existing, _ := res.Existing()
	old, err := decodeScheme(existing)
	if err != nil {
		return nil, false, err
	}
	if !sameScheme(old, rec) {
		return nil, false, fmt.Errorf("%w: scheme %q exists with a different definition", ErrAlreadyExists, d.Name)
	}
	return schemeToAPI(old), false, nil
}

// sameScheme compares two scheme definitions, ignoring their creation
// time and their history of key changes.
func sameScheme(a, b *vaultpb.SchemeRecord) bool {
	a2 := proto.Clone(a).(*vaultpb.SchemeRecord)
	b2 := proto.Clone(b).(*vaultpb.SchemeRecord)
	a2.CreateUnixNanos, b2.CreateUnixNanos = 0, 0
	a2.PreviousKeys, b2.PreviousKeys = nil, nil
	a2.Revision, b2.Revision = 0, 0
	return proto.Equal(a2, b2)
}

// checkSchemeKeys verifies that the keys d names exist with the purposes
// its mode needs.
func (n *Node) checkSchemeKeys(ctx context.Context, d scheme.Definition) error {
	want := vaultpb.KeyPurpose_KEY_PURPOSE_PAN_ENCRYPTION
	if d.Mode == scheme.ModeFF1 {
		want = vaultpb.KeyPurpose_KEY_PURPOSE_FPE
	}
	check := func(field, name string, want vaultpb.KeyPurpose) error {
		rec, err := n.keyring.record(ctx, name, false)
		if errors.Is(err, ErrKeyNotFound) {
			return fmt.Errorf("%w: scheme.%s names key %q, which does not exist (create it first)", ErrWrongPurpose, field, name)
		}
		if err != nil {
			return err
		}
		if rec.GetPurpose() != want {
			return fmt.Errorf("%w: scheme.%s names key %q, whose purpose is %s, not %s", ErrWrongPurpose, field, name,
				purposeName(rec.GetPurpose()), purposeName(want))
		}
		return nil
	}
	if err := check("key", d.KeyName, want); err != nil {
		return err
	}
	if d.FingerprintKeyName != "" {
		return check("fingerprint_key", d.FingerprintKeyName, vaultpb.KeyPurpose_KEY_PURPOSE_FINGERPRINT)
	}
	return nil
}

// GetScheme returns the stored scheme name.
func (n *Node) GetScheme(ctx context.Context, name string) (*pb.Scheme, error) {
	e, err := n.schemes.get(ctx, "name", name)
	if err != nil {
		return nil, err
	}
	return schemeToAPI(e.rec), nil
}

// Listing limits of ListSchemes and ListKeys.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// listPage reads one page of a small bucket in name order, linearizably.
func (n *Node) listPage(ctx context.Context, bucket string, pageSize uint32, pageToken string) ([]raftstore.KV, string, error) {
	size := int(pageSize)
	if size == 0 {
		size = defaultPageSize
	}
	if size > maxPageSize {
		size = maxPageSize
	}
	var after []byte
	if pageToken != "" {
		if err := checkName("page_token", pageToken); err != nil {
			return nil, "", err
		}
		after = []byte(pageToken)
	}
	kvs, more, err := n.store.Scan(ctx, bucket, raftstore.ScanOptions{After: after, Limit: size, Mode: raftstore.Linearizable})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if more && len(kvs) > 0 {
		next = string(kvs[len(kvs)-1].Key)
	}
	return kvs, next, nil
}

// ListSchemes returns one page of schemes in name order.
func (n *Node) ListSchemes(ctx context.Context, pageSize uint32, pageToken string) ([]*pb.Scheme, string, error) {
	kvs, next, err := n.listPage(ctx, bucketSchemes, pageSize, pageToken)
	if err != nil {
		return nil, "", err
	}
	out := make([]*pb.Scheme, 0, len(kvs))
	for _, kv := range kvs {
		rec, err := decodeScheme(kv.Value)
		if err != nil {
			return nil, "", err
		}
		out = append(out, schemeToAPI(rec))
	}
	return out, next, nil
}
