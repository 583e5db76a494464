package keys_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panvault/panvault/keys"
)

// mixedLoad runs workers goroutines doing mixed operations across two nodes
// until ctx ends, and returns the first error of each worker and how many
// operations of each kind completed.
func mixedLoad(ctx context.Context, a, b *keys.HSM, refs map[keys.KeyType]keys.KeyRef, blobs [][]byte, workers int, tag string) ([]error, map[string]int64) {
	var counts [8]atomic.Int64
	names := []string{"gcm", "ecb", "hmac", "ecdsa", "rsa", "random", "load", "generate"}
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- worker(ctx, w, a, b, refs, blobs, &counts, tag)
		}()
	}
	wg.Wait()
	close(errs)
	var out []error
	for err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	m := map[string]int64{}
	for i, n := range names {
		m[n] = counts[i].Load()
	}
	return out, m
}

func worker(ctx context.Context, w int, a, b *keys.HSM, refs map[keys.KeyType]keys.KeyRef, blobs [][]byte, counts *[8]atomic.Int64, tag string) error {
	src := make([]byte, 16*16)
	for i := range src {
		src[i] = byte(w + i)
	}
	d1, d2 := make([]byte, len(src)), make([]byte, len(src))
	x, y := a, b
	if w%2 == 1 {
		x, y = b, a
	}
	for i := 0; ctx.Err() == nil; i++ {
		op := (w + i) % 16
		var err error
		switch {
		case op < 4:
			pan := []byte(fmt.Sprintf("41111111%08d", w*100000+i))
			var ct, pt []byte
			if ct, err = x.Seal(ctx, refs[keys.KeyAES256GCM], pan, []byte(tag)); err == nil {
				if pt, err = y.Open(ctx, refs[keys.KeyAES256GCM], ct, []byte(tag)); err == nil && !bytes.Equal(pt, pan) {
					err = errors.New("gcm round trip returned another plaintext")
				}
			}
			counts[0].Add(1)
		case op < 7:
			if err = x.EncryptBlocks(ctx, refs[keys.KeyAES256FF1], d1, src); err == nil {
				if err = y.EncryptBlocks(ctx, refs[keys.KeyAES256FF1], d2, src); err == nil && !bytes.Equal(d1, d2) {
					err = errors.New("ecb differs between nodes")
				}
			}
			counts[1].Add(1)
		case op < 10:
			var m1, m2 []byte
			if m1, err = x.HMAC(ctx, refs[keys.KeyHMACSHA256], src[:20]); err == nil {
				if m2, err = y.HMAC(ctx, refs[keys.KeyHMACSHA256], src[:20]); err == nil && !bytes.Equal(m1, m2) {
					err = errors.New("hmac differs between nodes")
				}
			}
			counts[2].Add(1)
		case op < 13:
			typ := keys.KeyECDSAP256
			if op == 12 {
				typ = keys.KeyECDSAP384
			}
			var sig []byte
			if sig, err = x.Sign(ctx, refs[typ], src); err == nil {
				pub, _ := y.PublicKey(refs[typ])
				err = keys.VerifySignature(typ, pub, src, sig)
			}
			counts[3].Add(1)
		case op == 13:
			if i%8 == 0 { // RSA-3072 is slow; keep it a small share
				var sig []byte
				if sig, err = x.Sign(ctx, refs[keys.KeyRSA3072PSS], src); err == nil {
					pub, _ := y.PublicKey(refs[keys.KeyRSA3072PSS])
					err = keys.VerifySignature(keys.KeyRSA3072PSS, pub, src, sig)
				}
				counts[4].Add(1)
			}
		case op == 14:
			_, err = x.Random(ctx, 16)
			counts[5].Add(1)
		default:
			if i%4 == 0 && i < 64 {
				// Key management under load: a new key on x, replicated to y.
				var wk *keys.WrappedKey
				wk, err = x.GenerateKey(ctx, keys.KeySpec{ID: fmt.Sprintf("%s-w%d-%d", tag, w, i), Version: 1, Type: keys.KeyHMACSHA256})
				if err == nil {
					var blob []byte
					if blob, err = wk.Marshal(); err == nil {
						_, err = y.LoadWrapped(ctx, blob)
					}
				}
				counts[7].Add(1)
			} else {
				_, err = y.LoadWrapped(ctx, blobs[i%len(blobs)]) // idempotent reload
				counts[6].Add(1)
			}
		}
		if err != nil {
			if ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
				return nil // the run ended while waiting for a session
			}
			return fmt.Errorf("worker %d op %d: %w", w, op, err)
		}
	}
	return nil
}

func replicate(t *testing.T, a, b *keys.HSM, prefix string) (map[keys.KeyType]keys.KeyRef, [][]byte) {
	t.Helper()
	refs := map[keys.KeyType]keys.KeyRef{}
	var blobs [][]byte
	for _, typ := range replicatedTypes {
		wk, blob := generate(t, a, prefix+typ.String(), typ)
		if _, err := b.LoadWrapped(testCtx(t), blob); err != nil {
			t.Fatal(err)
		}
		refs[typ] = wk.Ref()
		blobs = append(blobs, blob)
	}
	return refs, blobs
}

// 32 goroutines, mixed operations on two nodes whose pools are smaller than
// that, for a few seconds (run under -race): no error, no crash.
func TestConcurrentMixedOperations(t *testing.T) {
	a, b, _ := twoNodes(t)
	refs, blobs := replicate(t, a, b, "conc-")
	d := 3 * time.Second
	if testing.Short() {
		d = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	errs, counts := mixedLoad(ctx, a, b, refs, blobs, 32, "c")
	for _, err := range errs {
		t.Error(err)
	}
	for name, n := range counts {
		if n == 0 {
			t.Errorf("no %s operation completed", name)
		}
	}
	t.Logf("operations: %v; pool A %+v; pool B %+v", counts, a.Stats(), b.Stats())
	if a.Stats().InUse != 0 || b.Stats().InUse != 0 {
		t.Fatal("sessions still lent after all workers returned")
	}
}

// Sessions lost between two bursts of concurrent load: the 32 goroutines of
// the second burst all hit dead sessions at once and share one recovery.
// (Sessions are not closed during a burst: SoftHSM frees a session that
// another thread may be using, which would crash the process, not test us.)
func TestConcurrentRecovery(t *testing.T) {
	a, b, _ := twoNodes(t)
	refs, blobs := replicate(t, a, b, "rec-")
	for burst := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		errs, _ := mixedLoad(ctx, a, b, refs, blobs, 32, fmt.Sprintf("r%d", burst))
		cancel()
		for _, err := range errs {
			t.Fatalf("burst %d: %v", burst, err)
		}
		if err := keys.CloseAllSessionsForTest(a); err != nil {
			t.Fatal(err)
		}
		if err := keys.CloseAllSessionsForTest(b); err != nil {
			t.Fatal(err)
		}
	}
	if ra, rb := a.Stats().Recoveries, b.Stats().Recoveries; ra != 2 || rb != 2 {
		t.Fatalf("recoveries: A %d, B %d; want exactly 2 each (one per loss, shared by all goroutines)", ra, rb)
	}
}
