package fpe_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/panvault/panvault/keys/fpe"
	"github.com/panvault/panvault/keys/fpe/fpetest"
)

// With a PassCipher, each FF1 call (single, string or batch, either
// direction, either arithmetic path) opens exactly one pass, makes all its
// calls through it (as many as the plain cipher would get) and closes it.
func TestPassPerCall(t *testing.T) {
	key := make([]byte, 32)
	pc := &fpetest.PassCipher{Inner: newAES(t, key)}
	cc := &fpetest.CountingCipher{Inner: newAES(t, key)}
	fp, fc := newFF1(t, pc, 10), newFF1(t, cc, 10)
	ops := map[string]func(f *fpe.FF1) error{
		"Encrypt":      func(f *fpe.FF1) error { return f.Encrypt([]byte("tw"), toNumerals(testPAN)) },
		"Decrypt":      func(f *fpe.FF1) error { return f.Decrypt(nil, toNumerals(testPAN)) },
		"String":       func(f *fpe.FF1) error { _, err := f.EncryptString(make([]byte, 40), testPAN); return err },
		"General":      func(f *fpe.FF1) error { return f.EncryptGeneral(nil, toNumerals(testPAN)) },
		"EncryptBatch": func(f *fpe.FF1) error { return f.EncryptBatch(nil, panBatch(500)) },
		"DecryptBatch": func(f *fpe.FF1) error {
			tw := make([][]byte, 300)
			for i := range tw {
				tw[i] = make([]byte, i%45) // up to three prefix steps
			}
			return f.DecryptBatch(tw, panBatch(300))
		},
		"BatchGeneral": func(f *fpe.FF1) error { return f.EncryptBatchGeneral(nil, panBatch(7)) },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			pc.Reset()
			cc.Reset()
			if err := op(fp); err != nil {
				t.Fatal(err)
			}
			if err := op(fc); err != nil {
				t.Fatal(err)
			}
			if pc.Opened() != 1 || pc.Closed() != 1 || pc.Misuses() != 0 || pc.PlainCalls() != 0 {
				t.Fatalf("opened %d closed %d misuses %d plain calls %d, want one pass and nothing else",
					pc.Opened(), pc.Closed(), pc.Misuses(), pc.PlainCalls())
			}
			if pc.PassCalls() != cc.Calls() || pc.PassCalls() < 10 {
				t.Fatalf("%d calls through the pass, the plain cipher got %d", pc.PassCalls(), cc.Calls())
			}
		})
	}
	// Validation errors happen before any pass is opened.
	pc.Reset()
	if err := fp.EncryptBatch(nil, [][]byte{toNumerals(testPAN), {1}}); !errors.Is(err, fpe.ErrBatch) {
		t.Fatalf("mixed lengths: %v", err)
	}
	if pc.Opened() != 0 {
		t.Fatalf("a rejected batch opened %d passes", pc.Opened())
	}
}

// A failure at any call of a batch (prefix or any round) closes the pass,
// returns ErrCipher wrapping the cipher's error, and leaves every input
// unchanged; the same FF1 works afterwards.
func TestPassFailureClosesPass(t *testing.T) {
	key := make([]byte, 16)
	want := panBatch(64)
	ref := newFF1(t, newAES(t, key), 10)
	if err := ref.EncryptBatch(nil, want); err != nil {
		t.Fatal(err)
	}
	for failAt := int64(1); failAt <= 11; failAt++ {
		pc := &fpetest.PassCipher{Inner: newAES(t, key), FailAt: failAt}
		f := newFF1(t, pc, 10)
		xs := panBatch(64)
		err := f.EncryptBatch(nil, xs)
		if !errors.Is(err, fpe.ErrCipher) || !errors.Is(err, fpetest.ErrInjected) {
			t.Fatalf("fail at call %d: got %v", failAt, err)
		}
		assertNoDigits(t, err)
		if pc.PassCalls() != failAt || pc.Opened() != 1 || pc.Closed() != 1 || pc.Misuses() != 0 {
			t.Fatalf("fail at call %d: %d calls, opened %d closed %d misuses %d",
				failAt, pc.PassCalls(), pc.Opened(), pc.Closed(), pc.Misuses())
		}
		for i, x := range xs {
			if !bytes.Equal(x, panBatch(64)[i]) {
				t.Fatalf("fail at call %d: input %d changed", failAt, i)
			}
		}
		pc.FailAt = 0
		if err := f.EncryptBatch(nil, xs); err != nil {
			t.Fatalf("after a failure: %v", err)
		}
		for i := range xs {
			if !bytes.Equal(xs[i], want[i]) {
				t.Fatalf("after a failure: item %d differs", i)
			}
		}
	}
}

// The pass path gives exactly what the plain path gives, over random radixes,
// lengths, tweaks and batch sizes, both directions.
func TestPassMatchesPlain(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	key := make([]byte, 24)
	for i := range key {
		key[i] = byte(rng.Uint32())
	}
	for range 60 {
		radix := fpe.MinRadix + rng.IntN(fpe.MaxRadix-fpe.MinRadix+1)
		lo, hi, _ := fpe.LengthRange(radix)
		n := lo + rng.IntN(hi-lo+1)
		items := 1 + rng.IntN(40)
		pc := &fpetest.PassCipher{Inner: newAES(t, key)}
		fp, fa := newFF1(t, pc, radix), newFF1(t, newAES(t, key), radix)
		tweaks := make([][]byte, items)
		a := make([][]byte, items)
		b := make([][]byte, items)
		for i := range a {
			tweaks[i] = randTweak(rng)
			a[i] = randNumerals(rng, radix, n)
			b[i] = bytes.Clone(a[i])
		}
		if err := fp.EncryptBatch(tweaks, a); err != nil {
			t.Fatal(err)
		}
		if err := fa.EncryptBatch(tweaks, b); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				t.Fatalf("radix %d n %d item %d: pass and plain disagree", radix, n, i)
			}
		}
		if err := fp.DecryptBatch(tweaks, a); err != nil {
			t.Fatal(err)
		}
		if err := fa.DecryptBatch(tweaks, b); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				t.Fatalf("radix %d n %d item %d: pass and plain disagree on decrypt", radix, n, i)
			}
		}
		if pc.Opened() != 2 || pc.Closed() != 2 || pc.Misuses() != 0 {
			t.Fatalf("opened %d closed %d misuses %d", pc.Opened(), pc.Closed(), pc.Misuses())
		}
	}
}

// Passes of concurrent FF1 calls are independent: each is used by its own
// goroutine only (the wrapper sees no overlap) and all are closed.
func TestPassConcurrent(t *testing.T) {
	key := make([]byte, 32)
	pc := &fpetest.PassCipher{Inner: newAES(t, key)}
	f := newFF1(t, pc, 10)
	want := panBatch(32)
	if err := newFF1(t, newAES(t, key), 10).EncryptBatch(nil, want); err != nil {
		t.Fatal(err)
	}
	pc.Reset()
	const workers, iters = 8, 20
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				for range iters {
					xs := panBatch(32)
					if err := f.EncryptBatch(nil, xs); err != nil {
						return err
					}
					for i := range xs {
						if !bytes.Equal(xs[i], want[i]) {
							return fmt.Errorf("worker %d item %d differs", w, i)
						}
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if pc.Opened() != workers*iters || pc.Closed() != pc.Opened() || pc.Misuses() != 0 {
		t.Fatalf("opened %d closed %d misuses %d, want %d passes", pc.Opened(), pc.Closed(), pc.Misuses(), workers*iters)
	}
}
