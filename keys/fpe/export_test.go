package fpe

// Test hooks: run the math/big path even where the uint64 path applies.

func (f *FF1) EncryptGeneral(tweak, x []byte) error { return f.one(true, true, tweak, x) }
func (f *FF1) DecryptGeneral(tweak, x []byte) error { return f.one(false, true, tweak, x) }

func (f *FF1) EncryptBatchGeneral(tweaks, xs [][]byte) error { return f.batch(true, true, tweaks, xs) }
func (f *FF1) DecryptBatchGeneral(tweaks, xs [][]byte) error { return f.batch(false, true, tweaks, xs) }

// UsesFastPath reports whether inputs of length n take the uint64 path.
func (f *FF1) UsesFastPath(n int) bool {
	p, err := f.planFor(n)
	return err == nil && p.fast
}
