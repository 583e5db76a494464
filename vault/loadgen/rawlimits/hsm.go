package rawlimits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/softhsm"
)

// HSMOptions configure HSMRates. Zero fields take the defaults.
type HSMOptions struct {
	// Env is the process's SoftHSM environment; default softhsm.Temp().
	// A throwaway token is created in it and deleted afterwards.
	Env *softhsm.Env
	// Duration is the time of each measurement (default 2s); there are two
	// per operation: one goroutine, then Parallel goroutines.
	Duration time.Duration
	// Parallel is the goroutine count of the parallel measurements; default
	// GOMAXPROCS.
	Parallel int
}

// HSM operation names, as in HSMResult.
const (
	HSMSignP256   = "sign-p256"    // ECDSA P-256 over SHA-256 of a 256-byte message
	HSMECB1       = "ecb-1"        // one AES-ECB call over 1 block (an FF1 round of one PAN)
	HSMECB256     = "ecb-256"      // one AES-ECB call over 256 blocks (FF1 rounds of a batch)
	HSMSealGCM128 = "gcm-seal-128" // AES-256-GCM seal of 128 bytes with 16 bytes of AAD
	HSMOpenGCM128 = "gcm-open-128" // the matching open
)

// HSMOp is the measured rate of one HSM operation.
type HSMOp struct {
	Name     string
	Single   Rate // one goroutine
	Parallel Rate // HSMOptions.Parallel goroutines
}

// HSMRates measures SoftHSM through package keys' public API, the way the
// vault uses it (session pool, session-object keys unwrapped under a master
// key): ECDSA P-256 signatures, AES-ECB over 1 and 256 blocks, AES-GCM seal and
// open of 128 bytes, each from one goroutine and from Parallel goroutines.
// It needs a process whose SoftHSM configuration it may use (see package
// softhsm: one per process).
func HSMRates(ctx context.Context, opts HSMOptions) (ops []HSMOp, err error) {
	if opts.Duration == 0 {
		opts.Duration = 2 * time.Second
	}
	if opts.Parallel == 0 {
		opts.Parallel = runtime.GOMAXPROCS(0)
	}
	if opts.Duration < 0 || opts.Parallel < 1 || opts.Parallel > keys.MaxPoolSize {
		return nil, fmt.Errorf("%w: hsm duration %v, parallel %d", ErrInvalidOptions, opts.Duration, opts.Parallel)
	}
	env := opts.Env
	if env == nil {
		if env, err = softhsm.Temp(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrProbe, err)
		}
	}
	h, refs, cleanup, err := openProbeHSM(ctx, env, opts.Parallel)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, cleanup()) }()

	msg := make([]byte, 256)
	pt := make([]byte, 128)
	aad := make([]byte, 16)
	if _, err := rand.Read(msg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProbe, err)
	}
	sealed, err := h.Seal(ctx, refs[keys.KeyAES256GCM], pt, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: seal: %w", ErrProbe, err)
	}
	// Per-goroutine ECB buffers: EncryptBlocks writes dst.
	ecbSrc := make([]byte, 256*keys.BlockSize)
	ecbDst := make([][]byte, opts.Parallel)
	for i := range ecbDst {
		ecbDst[i] = make([]byte, len(ecbSrc))
	}
	probes := []struct {
		name string
		op   func(ctx context.Context, g int, n int64) error
	}{
		{HSMSignP256, func(ctx context.Context, _ int, _ int64) error {
			_, err := h.Sign(ctx, refs[keys.KeyECDSAP256], msg)
			return err
		}},
		{HSMECB1, func(ctx context.Context, g int, _ int64) error {
			return h.EncryptBlocks(ctx, refs[keys.KeyAES256FF1], ecbDst[g][:keys.BlockSize], ecbSrc[:keys.BlockSize])
		}},
		{HSMECB256, func(ctx context.Context, g int, _ int64) error {
			return h.EncryptBlocks(ctx, refs[keys.KeyAES256FF1], ecbDst[g], ecbSrc)
		}},
		{HSMSealGCM128, func(ctx context.Context, _ int, _ int64) error {
			_, err := h.Seal(ctx, refs[keys.KeyAES256GCM], pt, aad)
			return err
		}},
		{HSMOpenGCM128, func(ctx context.Context, _ int, _ int64) error {
			_, err := h.Open(ctx, refs[keys.KeyAES256GCM], sealed, aad)
			return err
		}},
	}
	for _, p := range probes {
		single, err := timed(ctx, opts.Duration, 1, p.op)
		if err != nil {
			return nil, fmt.Errorf("hsm %s: %w", p.name, err)
		}
		par, err := timed(ctx, opts.Duration, opts.Parallel, p.op)
		if err != nil {
			return nil, fmt.Errorf("hsm %s parallel: %w", p.name, err)
		}
		ops = append(ops, HSMOp{Name: p.name, Single: single, Parallel: par})
	}
	return ops, nil
}

// openProbeHSM creates a throwaway token with a master key and one working
// key of each measured type. cleanup closes the HSM and deletes the token.
func openProbeHSM(ctx context.Context, env *softhsm.Env, parallel int) (*keys.HSM, map[keys.KeyType]keys.KeyRef, func() error, error) {
	suffix := make([]byte, 6)
	if _, err := rand.Read(suffix); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrProbe, err)
	}
	tok, err := env.CreateToken("rawlimits-" + hex.EncodeToString(suffix))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: create token: %w", ErrProbe, err)
	}
	cfg := tok.Config()
	cfg.PoolSize = max(parallel, 8)
	h, err := keys.Open(ctx, cfg)
	if err != nil {
		return nil, nil, nil, errors.Join(fmt.Errorf("%w: open token: %w", ErrProbe, err), tok.Delete())
	}
	cleanup := func() error { return errors.Join(h.Close(), tok.Delete()) }
	fail := func(what string, err error) (*keys.HSM, map[keys.KeyType]keys.KeyRef, func() error, error) {
		return nil, nil, nil, errors.Join(fmt.Errorf("%w: %s: %w", ErrProbe, what, err), cleanup())
	}
	set, err := h.GenerateComponents(ctx, keys.MinComponents)
	if err != nil {
		return fail("master key components", err)
	}
	if _, err := h.LoadMasterKey(ctx, set.Components, set.MasterKCV); err != nil {
		return fail("master key", err)
	}
	refs := map[keys.KeyType]keys.KeyRef{}
	for _, typ := range []keys.KeyType{keys.KeyECDSAP256, keys.KeyAES256FF1, keys.KeyAES256GCM} {
		spec := keys.KeySpec{ID: "rawlimits-" + typ.String(), Version: 1, Type: typ}
		if _, err := h.GenerateKey(ctx, spec); err != nil {
			return fail("generate "+typ.String(), err)
		}
		refs[typ] = spec.Ref()
	}
	return h, refs, cleanup, nil
}
