package fpe_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

// One FF1 shared by many goroutines (singles, strings and batches at once)
// gives the same results as sequential use. Workers report through a
// channel; only the test goroutine asserts.
func TestConcurrentUse(t *testing.T) {
	f := newFF1(t, newAES(t, make([]byte, 32)), 10)
	const workers, per = 8, 50
	want := make([][]byte, per)
	for i := range want {
		want[i] = panBatch(per)[i]
		if err := f.Encrypt([]byte{byte(i)}, want[i]); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				pts := panBatch(per)
				tweaks := make([][]byte, per)
				for i := range tweaks {
					tweaks[i] = []byte{byte(i)}
				}
				switch w % 3 {
				case 0:
					for i, x := range pts {
						if err := f.Encrypt(tweaks[i], x); err != nil {
							return err
						}
					}
				case 1:
					if err := f.EncryptBatch(tweaks, pts); err != nil {
						return err
					}
				case 2:
					for i, x := range pts {
						s := string(bytes.Map(func(r rune) rune { return r + '0' }, x))
						out, err := f.EncryptString(tweaks[i], s)
						if err != nil {
							return err
						}
						copy(x, toNumerals(out))
					}
				}
				for i := range pts {
					if !bytes.Equal(pts[i], want[i]) {
						return fmt.Errorf("worker %d item %d: result differs from sequential", w, i)
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
}
