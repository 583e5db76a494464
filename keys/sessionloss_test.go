package keys_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/softhsm/softhsmtest"
)

// loadAll generates one key of every replicated type on a and loads each on b.
func loadAll(t *testing.T, a, b *keys.HSM, prefix string) map[keys.KeyType]keys.KeyRef {
	t.Helper()
	refs := map[keys.KeyType]keys.KeyRef{}
	for _, typ := range replicatedTypes {
		wk, blob := generate(t, a, prefix+typ.String(), typ)
		if _, err := b.LoadWrapped(testCtx(t), blob); err != nil {
			t.Fatal(err)
		}
		refs[typ] = wk.Ref()
	}
	return refs
}

// useAll runs one operation with every key on h and checks results against
// the reference node ref (which did not lose its sessions).
func useAll(ctx context.Context, h, ref *keys.HSM, refs map[keys.KeyType]keys.KeyRef) error {
	ct, err := ref.Seal(ctx, refs[keys.KeyAES256GCM], []byte("4111111111111111"), []byte("a"))
	if err != nil {
		return err
	}
	if pt, err := h.Open(ctx, refs[keys.KeyAES256GCM], ct, []byte("a")); err != nil || string(pt) != "4111111111111111" {
		return errors.Join(errors.New("gcm open"), err)
	}
	src := bytes.Repeat([]byte{7}, 16*16)
	d1, d2 := make([]byte, len(src)), make([]byte, len(src))
	if err := h.EncryptBlocks(ctx, refs[keys.KeyAES256FF1], d1, src); err != nil {
		return err
	}
	if err := ref.EncryptBlocks(ctx, refs[keys.KeyAES256FF1], d2, src); err != nil {
		return err
	}
	if !bytes.Equal(d1, d2) {
		return errors.New("ecb differs from the reference node")
	}
	m1, err := h.HMAC(ctx, refs[keys.KeyHMACSHA256], []byte("m"))
	if err != nil {
		return err
	}
	m2, err := ref.HMAC(ctx, refs[keys.KeyHMACSHA256], []byte("m"))
	if err != nil {
		return err
	}
	if !bytes.Equal(m1, m2) {
		return errors.New("hmac differs from the reference node")
	}
	for _, typ := range []keys.KeyType{keys.KeyECDSAP256, keys.KeyECDSAP384, keys.KeyRSA3072PSS} {
		sig, err := h.Sign(ctx, refs[typ], []byte("m"))
		if err != nil {
			return err
		}
		pub, err := ref.PublicKey(refs[typ])
		if err != nil {
			return err
		}
		if err := keys.VerifySignature(typ, pub, []byte("m"), sig); err != nil {
			return err
		}
	}
	return nil
}

// All sessions closed behind the pool's back (as a token reset does): the
// next operations recover the login, the master key handle and every
// loaded key (unwrapped again from its blob), with one shared recovery.
func TestSessionLossRecovers(t *testing.T) {
	a, b, set := twoNodes(t)
	ctx := testCtx(t)
	refs := loadAll(t, a, b, "loss-")
	if err := useAll(ctx, b, a, refs); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 3; round++ {
		if err := keys.CloseAllSessionsForTest(b); err != nil {
			t.Fatal(err)
		}
		if err := useAll(ctx, b, a, refs); err != nil {
			t.Fatalf("round %d after session loss: %v", round, err)
		}
		if st := b.Stats(); st.Recoveries != uint64(round) || st.Keys != len(replicatedTypes) {
			t.Fatalf("round %d: stats %+v, want %d recoveries and %d keys", round, st, round, len(replicatedTypes))
		}
		if st := b.Stats(); st.Evicted+st.Dropped < uint64(round) {
			t.Fatalf("round %d: dead sessions not evicted or dropped: %+v", round, st)
		}
		if kcv, ok := b.MasterKeyKCV(); !ok || kcv != set.MasterKCV {
			t.Fatalf("round %d: master key %s %v", round, kcv, ok)
		}
	}
	// Key management works after a loss too: the anchor is new.
	if err := keys.CloseAllSessionsForTest(b); err != nil {
		t.Fatal(err)
	}
	wk, blob := generate(t, b, "after-loss", keys.KeyHMACSHA256)
	if _, err := a.LoadWrapped(ctx, blob); err != nil {
		t.Fatal(err)
	}
	if err := keys.CloseAllSessionsForTest(a); err != nil {
		t.Fatal(err)
	}
	if _, err := a.HMAC(ctx, wk.Ref(), nil); err != nil {
		t.Fatalf("key loaded after one loss, used after another: %v", err)
	}
}

// Two HSMs of one process on one token share its login: both recover.
func TestSessionLossSharedToken(t *testing.T) {
	tok := softhsmtest.New(t, "shared")
	h1 := openHSM(t, tok, nil)
	h2 := openHSM(t, tok, nil)
	ctx := testCtx(t)
	set, err := h1.GenerateComponents(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	loadMK(t, h1, set)
	// h2 opened before the master key existed, and finds it when asked.
	if kcv, ok := h2.MasterKeyKCV(); !ok || kcv != set.MasterKCV {
		t.Fatal("h2 does not find the master key h1 loaded")
	}
	_, blob := generate(t, h1, "shared-gcm", keys.KeyAES256GCM)
	if err := keys.CloseAllSessionsForTest(h1); err != nil {
		t.Fatal(err)
	}
	// Both HSMs lost their sessions and the shared login; each recovers.
	info, err := h2.LoadWrapped(ctx, blob)
	if err != nil {
		t.Fatalf("h2 after loss: %v", err)
	}
	ct, err := h1.Seal(ctx, info.Ref, []byte("x"), nil)
	if err != nil {
		t.Fatalf("h1 after loss: %v", err)
	}
	if _, err := h2.Open(ctx, info.Ref, ct, nil); err != nil {
		t.Fatal(err)
	}
}

// countLogins counts C_Login calls made through an HSM.
type countLogins struct {
	keys.RawP11
	mu sync.Mutex
	n  int
}

func (c *countLogins) Login(sh pkcs11.SessionHandle, user uint, pin string) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.RawP11.Login(sh, user, pin)
}

// If the PIN stops working while sessions are lost (an SO changed it),
// recovery tries it exactly once, and every later call fails with ErrBadPIN
// without trying again: no PIN loop, even with many callers.
func TestRecoveryNeverRetriesPIN(t *testing.T) {
	tok := softhsmtest.New(t, "pin-change")
	h := openHSM(t, tok, nil)
	ctx := testCtx(t)
	set, err := h.GenerateComponents(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	loadMK(t, h, set)
	wk, _ := generate(t, h, "pin-hmac", keys.KeyHMACSHA256)
	counter := &countLogins{}
	keys.SetP11ForTest(h, func(p keys.RawP11) keys.RawP11 { counter.RawP11 = p; return counter })

	if err := keys.CloseAllSessionsForTest(h); err != nil {
		t.Fatal(err)
	}
	p, slot := keys.P11ForTest(h), keys.SlotForTest(h)
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Login(sh, pkcs11.CKU_SO, tok.SOPIN); err != nil {
		t.Fatal(err)
	}
	if err := p.InitPIN(sh, "a-new-user-pin-1"); err != nil {
		t.Fatal(err)
	}
	p.Logout(sh)
	p.CloseSession(sh)
	counter.mu.Lock()
	counter.n = 0
	counter.mu.Unlock()

	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				_, err := h.HMAC(ctx, wk.Ref(), []byte("m"))
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, keys.ErrBadPIN) {
			t.Fatalf("call after the PIN changed: %v, want ErrBadPIN", err)
		}
	}
	counter.mu.Lock()
	n := counter.n
	counter.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d login attempts, want exactly 1", n)
	}
}

// failOpen makes C_OpenSession fail while down is set, as a device that
// went away would.
type failOpen struct {
	keys.RawP11
	mu   sync.Mutex
	down bool
}

func (f *failOpen) OpenSession(slot, flags uint) (pkcs11.SessionHandle, error) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return 0, pkcs11.Error(pkcs11.CKR_DEVICE_REMOVED)
	}
	return f.RawP11.OpenSession(slot, flags)
}

// An HSM that cannot be reached fails closed with ErrHSMUnavailable, and
// works again once it is back.
func TestHSMUnavailable(t *testing.T) {
	a, b, _ := twoNodes(t)
	ctx := testCtx(t)
	wk, blob := generate(t, a, "down-gcm", keys.KeyAES256GCM)
	if _, err := b.LoadWrapped(ctx, blob); err != nil {
		t.Fatal(err)
	}
	f := &failOpen{}
	keys.SetP11ForTest(b, func(p keys.RawP11) keys.RawP11 { f.RawP11 = p; return f })
	f.mu.Lock()
	f.down = true
	f.mu.Unlock()
	if err := keys.CloseAllSessionsForTest(b); err != nil {
		t.Fatal(err)
	}
	ct, err := a.Seal(ctx, wk.Ref(), []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := b.Open(ctx, wk.Ref(), ct, nil); !errors.Is(err, keys.ErrHSMUnavailable) {
			t.Fatalf("Open while the device is gone: %v, want ErrHSMUnavailable", err)
		}
	}
	if _, err := b.LoadWrapped(ctx, blob); err != nil {
		// Already loaded: no HSM call is needed, so no error either.
		t.Fatalf("reloading a loaded blob: %v", err)
	}
	f.mu.Lock()
	f.down = false
	f.mu.Unlock()
	if pt, err := b.Open(ctx, wk.Ref(), ct, nil); err != nil || string(pt) != "x" {
		t.Fatalf("after the device is back: %v", err)
	}
}
