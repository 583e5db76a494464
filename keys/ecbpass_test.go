package keys_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/keys/fpe/fpetest"
	"github.com/panvault/panvault/softhsm/softhsmtest"
)

// ff1PassRef is the FF1 key ff1Node makes.
var ff1PassRef = keys.KeyRef{ID: "ff1-pass", Version: 1}

// ecbAudit counts the AES encryption calls an HSM makes and, when told to,
// makes the n-th C_EncryptUpdate, C_EncryptInit or C_EncryptFinal fail (a
// fake result, without calling the library, so the library's operation
// stays active) or closes every session just before the n-th update (a real
// session loss). Safe for concurrent use.
type ecbAudit struct {
	keys.RawP11
	mu                        sync.Mutex
	init, encrypt, upd, final int
	updErrs                   int // real (library) update failures seen
	failUpdAt, failInitAt     int // 1-based; 0: never
	failFinalAt, loseAt       int
	slot                      uint
}

var errFake = pkcs11.Error(pkcs11.CKR_GENERAL_ERROR)

func (a *ecbAudit) EncryptInit(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism, o pkcs11.ObjectHandle) error {
	a.mu.Lock()
	a.init++
	fail := a.init == a.failInitAt
	a.mu.Unlock()
	if fail {
		return errFake
	}
	return a.RawP11.EncryptInit(sh, m, o)
}

func (a *ecbAudit) Encrypt(sh pkcs11.SessionHandle, msg []byte) ([]byte, error) {
	a.mu.Lock()
	a.encrypt++
	a.mu.Unlock()
	return a.RawP11.Encrypt(sh, msg)
}

func (a *ecbAudit) EncryptUpdate(sh pkcs11.SessionHandle, msg []byte) ([]byte, error) {
	a.mu.Lock()
	a.upd++
	fail, lose := a.upd == a.failUpdAt, a.upd == a.loseAt
	a.mu.Unlock()
	if fail {
		return nil, errFake
	}
	if lose {
		if err := a.RawP11.CloseAllSessions(a.slot); err != nil {
			return nil, err
		}
	}
	out, err := a.RawP11.EncryptUpdate(sh, msg)
	if err != nil {
		a.mu.Lock()
		a.updErrs++
		a.mu.Unlock()
	}
	return out, err
}

func (a *ecbAudit) EncryptFinal(sh pkcs11.SessionHandle) ([]byte, error) {
	a.mu.Lock()
	a.final++
	fail := a.final == a.failFinalAt
	a.mu.Unlock()
	if fail {
		return nil, errFake
	}
	return a.RawP11.EncryptFinal(sh)
}

// reset zeroes the counters and sets the fault points.
func (a *ecbAudit) reset(failUpd, failInit, failFinal, lose int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.init, a.encrypt, a.upd, a.final, a.updErrs = 0, 0, 0, 0, 0
	a.failUpdAt, a.failInitAt, a.failFinalAt, a.loseAt = failUpd, failInit, failFinal, lose
}

func (a *ecbAudit) counts() (init, encrypt, upd, final int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.init, a.encrypt, a.upd, a.final
}

// plainCipher hides OpenPass: FF1 over it takes the one-call-per-step path.
type plainCipher struct{ fpe.BlockCipher }

// ff1Node is an HSM (pool of poolSize sessions, 0: default) with an FF1 key,
// its block cipher audited by the returned ecbAudit.
func ff1Node(t testing.TB, poolSize int) (*keys.HSM, *keys.BlockCipher, *ecbAudit) {
	t.Helper()
	h := openHSM(t, softhsmtest.New(t, "ff1-pass"), func(c *keys.Config) { c.PoolSize = poolSize })
	set, err := h.GenerateComponents(testCtx(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	loadMK(t, h, set)
	wk, _ := generate(t, h, ff1PassRef.ID, keys.KeyAES256FF1)
	if wk.Ref() != ff1PassRef {
		t.Fatalf("generated %s, want %s", wk.Ref(), ff1PassRef)
	}
	bc, err := h.BlockCipher(testCtx(t), wk.Ref())
	if err != nil {
		t.Fatal(err)
	}
	a := &ecbAudit{slot: keys.SlotForTest(h)}
	keys.SetP11ForTest(h, func(p keys.RawP11) keys.RawP11 { a.RawP11 = p; return a })
	return h, bc, a
}

// What the pass relies on, checked on this machine's SoftHSM: a multi-part
// AES-ECB encryption returns every whole block of each C_EncryptUpdate at
// once, equal to single-part C_Encrypt; C_EncryptFinal then returns nothing
// and ends the operation; and while an operation is active a new
// C_EncryptInit on the session is refused (why a pass must never hand on a
// session with its operation open).
func TestSoftHSMMultiPartECB(t *testing.T) {
	h, bc, _ := ff1Node(t, 0)
	rng := rand.New(rand.NewPCG(11, 12))
	src := make([]byte, 16*64)
	for i := range src {
		src[i] = byte(rng.Uint32())
	}
	want := make([]byte, len(src))
	if err := bc.EncryptBlocks(want, src); err != nil {
		t.Fatal(err)
	}
	err := keys.RawForTest(testCtx(t), h, ff1PassRef, func(p keys.RawP11, sh pkcs11.SessionHandle, key, _ pkcs11.ObjectHandle) error {
		ecb := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}
		if err := p.EncryptInit(sh, ecb, key); err != nil {
			return err
		}
		var got []byte
		for _, blocks := range []int{1, 3, 60} {
			part := src[len(got) : len(got)+16*blocks]
			out, err := p.EncryptUpdate(sh, part)
			if err != nil {
				return err
			}
			if len(out) != len(part) {
				t.Errorf("update of %d blocks returned %d bytes", blocks, len(out))
			}
			got = append(got, out...)
		}
		if !bytes.Equal(got, want) {
			t.Error("multi-part ECB differs from single-part")
		}
		if err := p.EncryptInit(sh, ecb, key); !errors.Is(err, pkcs11.Error(pkcs11.CKR_OPERATION_ACTIVE)) {
			t.Errorf("init with an operation active: got %v, want CKR_OPERATION_ACTIVE", err)
		}
		out, err := p.EncryptFinal(sh)
		if err != nil {
			return err
		}
		if len(out) != 0 {
			t.Errorf("final returned %d bytes", len(out))
		}
		if _, err := p.EncryptUpdate(sh, src[:16]); !errors.Is(err, pkcs11.Error(pkcs11.CKR_OPERATION_NOT_INITIALIZED)) {
			t.Errorf("update after final: got %v, want CKR_OPERATION_NOT_INITIALIZED", err)
		}
		if err := p.EncryptInit(sh, ecb, key); err != nil {
			return err
		}
		_, err = p.Encrypt(sh, src[:16])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// FF1 over the SoftHSM key gives byte-identical results through the pass
// and through one C_Encrypt per step, over random lengths (both arithmetic
// paths), tweaks and batch sizes, both directions, and batch equals single.
func TestFF1PassMatchesPlainHSM(t *testing.T) {
	_, bc, _ := ff1Node(t, 0)
	fp, err := fpe.NewFF1(bc, 10)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := fpe.NewFF1(plainCipher{bc}, 10)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(21, 22))
	lo, hi, _ := fpe.LengthRange(10)
	iters := 40
	if testing.Short() {
		iters = 10
	}
	for it := range iters {
		n := lo + rng.IntN(hi-lo+1)
		items := 1 + rng.IntN(300)
		if it%4 == 0 {
			items = 1
		}
		tweaks := make([][]byte, items)
		a, b := make([][]byte, items), make([][]byte, items)
		for i := range a {
			tweaks[i] = make([]byte, []int{0, 7, 11, 20, 40}[rng.IntN(5)])
			for j := range tweaks[i] {
				tweaks[i][j] = byte(rng.Uint32())
			}
			a[i] = fpetest.Inputs(rng.Uint64(), 10, n, 1)[0]
			b[i] = bytes.Clone(a[i])
		}
		pt := make([][]byte, items)
		for i := range a {
			pt[i] = bytes.Clone(a[i])
		}
		if err := fp.EncryptBatch(tweaks, a); err != nil {
			t.Fatal(err)
		}
		if err := fc.EncryptBatch(tweaks, b); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				t.Fatalf("n %d item %d of %d: pass and plain disagree", n, i, items)
			}
		}
		one := bytes.Clone(pt[0])
		if err := fp.Encrypt(tweaks[0], one); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(one, a[0]) {
			t.Fatalf("n %d: single differs from batch", n)
		}
		if err := fp.DecryptBatch(tweaks, a); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if !bytes.Equal(a[i], pt[i]) {
				t.Fatalf("n %d item %d: decrypt does not invert encrypt", n, i)
			}
		}
	}
}

// The PKCS#11 cost of a pass: one C_EncryptInit and one C_EncryptFinal per
// FF1 call, one C_EncryptUpdate per step, no C_Encrypt; the plain path makes
// an init and an encrypt per step.
func TestFF1PassCallCounts(t *testing.T) {
	h, bc, a := ff1Node(t, 0)
	fp, err := fpe.NewFF1(bc, 10)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := fpe.NewFF1(plainCipher{bc}, 10)
	if err != nil {
		t.Fatal(err)
	}
	tweaks := make([][]byte, 256)
	for i := range tweaks {
		tweaks[i] = []byte{byte(i % 5)} // several tweak groups, one prefix step
	}
	xs := fpetest.Inputs(1, 10, 16, 256)
	type counts struct{ init, encrypt, upd, final int }
	for _, c := range []struct {
		name string
		run  func() error
		want counts
	}{
		{"batch cold", func() error { return fp.EncryptBatch(tweaks, xs) }, counts{1, 0, 11, 1}},
		{"batch warm", func() error { return fp.DecryptBatch(tweaks, xs) }, counts{1, 0, 10, 1}},
		{"single", func() error { return fp.Encrypt(tweaks[1], xs[0]) }, counts{1, 0, 10, 1}},
		{"40-byte tweak", func() error { return fp.Encrypt(make([]byte, 40), xs[0]) }, counts{1, 0, 13, 1}},
		{"plain batch", func() error { return fc.EncryptBatch(tweaks, xs) }, counts{11, 11, 0, 0}},
	} {
		a.reset(0, 0, 0, 0)
		if err := c.run(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got counts
		got.init, got.encrypt, got.upd, got.final = a.counts()
		if got != c.want {
			t.Errorf("%s: init/encrypt/update/final = %+v, want %+v", c.name, got, c.want)
		}
	}
	if st := h.Stats(); st.InUse != 0 || st.Evicted != 0 {
		t.Fatalf("pool after passes: %+v", st.PoolStats)
	}
}

// A failure at any point of a pass (its init, any update, its final) gives
// the session back or evicts it, never leaves an operation active on a
// pooled session and never keeps one lent. With a pool of one session, any
// leak would make the next call wait out its context (a session kept) or
// fail with CKR_OPERATION_ACTIVE (a session handed on mid-operation).
func TestFF1PassFailureReleasesSession(t *testing.T) {
	h, bc, a := ff1Node(t, 1)
	f, err := fpe.NewFF1(bc, 10)
	if err != nil {
		t.Fatal(err)
	}
	orig := fpetest.Inputs(3, 10, 16, 100)
	want := cloneAll(orig)
	if err := f.EncryptBatch(nil, want); err != nil { // warm: 10 updates per batch
		t.Fatal(err)
	}
	check := func(name string) {
		t.Helper()
		if st := h.Stats(); st.InUse != 0 {
			t.Fatalf("%s: %d sessions still lent", name, st.InUse)
		}
		// The next users of the one session: a plain call and a pass.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.EncryptBlocks(ctx, ff1PassRef, make([]byte, 32), make([]byte, 32)); err != nil {
			t.Fatalf("%s: next plain call: %v", name, err)
		}
		xs := cloneAll(orig)
		if err := f.EncryptBatch(nil, xs); err != nil {
			t.Fatalf("%s: next batch: %v", name, err)
		}
		if !equalAll(xs, want) {
			t.Fatalf("%s: next batch gives other results", name)
		}
	}
	for _, c := range []struct {
		name               string
		upd, init, final   int
		wantErr, wantEvict bool
	}{
		{"init fails", 0, 1, 0, true, true},
		{"first update fails", 1, 0, 0, true, true},
		{"round 5 fails", 5, 0, 0, true, true},
		{"last round fails", 10, 0, 0, true, true},
		{"final fails", 0, 0, 1, false, true},
	} {
		before := h.Stats().Evicted
		a.reset(c.upd, c.init, c.final, 0)
		xs := cloneAll(orig)
		err := f.EncryptBatch(nil, xs)
		a.reset(0, 0, 0, 0)
		if c.wantErr {
			if !errors.Is(err, fpe.ErrCipher) || !errors.Is(err, errFake) {
				t.Fatalf("%s: got %v", c.name, err)
			}
			if !equalAll(xs, orig) {
				t.Fatalf("%s: inputs changed by a failed batch", c.name)
			}
		} else {
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if !equalAll(xs, want) {
				t.Fatalf("%s: results differ", c.name)
			}
		}
		if evicted := h.Stats().Evicted - before; (evicted == 1) != c.wantEvict {
			t.Fatalf("%s: %d sessions evicted", c.name, evicted)
		}
		check(c.name)
	}
}

// A real session loss in the middle of a batch (every session closed just
// before its 4th update) is recovered once, the step is redone on a fresh
// session and operation, and the batch gives the right result.
func TestFF1PassSessionLoss(t *testing.T) {
	h, bc, a := ff1Node(t, 0)
	f, err := fpe.NewFF1(bc, 10)
	if err != nil {
		t.Fatal(err)
	}
	orig := fpetest.Inputs(4, 10, 16, 50)
	want := cloneAll(orig)
	if err := f.EncryptBatch(nil, want); err != nil {
		t.Fatal(err)
	}
	rec := h.Stats().Recoveries
	a.reset(0, 0, 0, 4)
	xs := cloneAll(orig)
	if err := f.EncryptBatch(nil, xs); err != nil {
		t.Fatal(err)
	}
	if !equalAll(xs, want) {
		t.Fatal("batch across a session loss gives other results")
	}
	init, _, upd, final := a.counts()
	if got := h.Stats().Recoveries - rec; got != 1 || init != 2 || upd != 11 || final != 1 {
		t.Fatalf("recoveries %d, init %d, updates %d, final %d; want 1, 2, 11 (one redone), 1", got, init, upd, final)
	}
	if st := h.Stats(); st.InUse != 0 {
		t.Fatalf("%d sessions still lent", st.InUse)
	}
}

// A pass holding a session while another caller's recovery finds every
// session gone does not touch that session's handle again (the library may
// have given the number to a new session): its next step runs on a fresh
// session, and its close makes no call on the old one.
func TestPassSessionDiscardedWhileHeld(t *testing.T) {
	h, bc, a := ff1Node(t, 0)
	src := make([]byte, 64)
	want := make([]byte, 64)
	if err := bc.EncryptBlocks(want, src); err != nil {
		t.Fatal(err)
	}
	p := bc.OpenPass()
	dst := make([]byte, 64)
	if err := p.EncryptBlocks(dst, src); err != nil || !bytes.Equal(dst, want) {
		t.Fatalf("first step: %v", err)
	}
	if err := keys.CloseAllSessionsForTest(h); err != nil {
		t.Fatal(err)
	}
	// Another caller meets the loss and recovers (discarding the pool).
	if err := bc.EncryptBlocks(make([]byte, 16), src[:16]); err != nil {
		t.Fatal(err)
	}
	if h.Stats().Recoveries == 0 {
		t.Fatal("no recovery ran")
	}
	a.reset(0, 0, 0, 0)
	clear(dst)
	if err := p.EncryptBlocks(dst, src); err != nil || !bytes.Equal(dst, want) {
		t.Fatalf("step after the discard: %v", err)
	}
	p.Close()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.updErrs != 0 || a.init != 1 || a.upd != 1 || a.final != 1 {
		t.Fatalf("after the discard: %d failed updates, init %d update %d final %d; want 0, 1, 1, 1",
			a.updErrs, a.init, a.upd, a.final)
	}
	if st := h.Stats(); st.InUse != 0 {
		t.Fatalf("%d sessions still lent", st.InUse)
	}
	if err := p.EncryptBlocks(dst, src); !errors.Is(err, keys.ErrInvalidInput) {
		t.Fatalf("step after close: %v", err)
	}
}

func cloneAll(xs [][]byte) [][]byte {
	out := make([][]byte, len(xs))
	for i, x := range xs {
		out[i] = bytes.Clone(x)
	}
	return out
}

func equalAll(a, b [][]byte) bool {
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}
