package fpe

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one of
// them (or, for a BlockCipher failure, [ErrCipher] and the cipher's error),
// so callers test with errors.Is. Messages never contain numerals.
var (
	// ErrRadix: the radix is outside 2..36.
	ErrRadix = errors.New("fpe: unsupported radix")
	// ErrLength: the input length is outside the domain of CheckLength.
	ErrLength = errors.New("fpe: input length outside the ff1 domain")
	// ErrTweak: the tweak is longer than the configured maximum.
	ErrTweak = errors.New("fpe: tweak too long")
	// ErrNumeral: a numeral or symbol is not in the radix's alphabet.
	ErrNumeral = errors.New("fpe: invalid numeral")
	// ErrBatch: a batch is malformed (mismatched slice lengths or mixed input lengths).
	ErrBatch = errors.New("fpe: invalid batch")
	// ErrCipher: the BlockCipher failed; the cipher's own error is wrapped too.
	ErrCipher = errors.New("fpe: block cipher failed")
	// ErrConfig: NewFF1 was given a nil cipher or a negative tweak limit.
	ErrConfig = errors.New("fpe: invalid configuration")
)
