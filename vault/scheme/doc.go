// Package scheme defines token schemes and makes tokens: random (vaulted)
// tokens and FF1 (vaultless) tokens. It is pure code: no storage, no network,
// no HSM of its own (FF1 runs over whatever block cipher its *fpe.FF1 was
// built with, in production an HSM-resident AES key).
//
// # Why it is separate
//
// A token's format is a contract with every system that stores tokens: how
// many digits are kept, whether tokens pass the Luhn check, which digit
// carries the rule. Keeping the format rules in one small package, with
// property tests over every scheme shape, length and brand, makes that
// contract checkable without a cluster.
//
// # Definitions
//
// A [Definition] is validated once ([Definition.Validate], or [New], which
// also canonicalizes and precomputes) and then used through an immutable
// [*Scheme]. Every violation names its API field (name, mode, keep_leading,
// keep_trailing, luhn_rule, ttl, key, fingerprint_key, allowed_lengths,
// allow_non_luhn_unionpay) in a *card.RuleError inside a [*ValidationError].
//
// Free digits: a token of an n-digit PAN keeps keep_leading + keep_trailing
// digits; under luhn pass or fail one more digit (the last free one) is
// spent on the rule. What remains ([Definition.FreeDigits]) is random or FF1
// output. An FF1 scheme is refused when, for any allowed length, that leaves
// fewer than 10^6 values (NIST SP 800-38G Rev. 1's domain floor); the error
// lists each failing length with its arithmetic. Vaulted schemes have no
// floor, but each length must allow a token different from the PAN.
//
// # Tokens
//
//   - Vaulted ([Scheme.NewRandomToken]): digits from crypto/rand by rejection
//     sampling (no modulo bias); the check position set to pass or (uniformly
//     among nine digits) fail; redrawn if equal to the PAN.
//   - FF1 ([FF1Tokenizer]): deterministic. See FF1Tokenizer for the check digit
//     and tweak.go for the tweak, which binds scheme, key version, PAN length
//     and kept digits. Batches run one FF1 batch per PAN length.
//
// Which tokens can equal their PAN: none under luhn fail for Luhn-valid PANs
// (a token fails, the PAN passes); none for vaulted schemes (redrawn); under FF1
// with luhn pass or any, FF1 maps a PAN to itself with probability
// 10^-FreeDigits, and Tokenize then refuses the PAN with [ErrFixedPoint] rather
// than return the PAN as its own token.
//
// Non-Luhn UnionPay PANs (allow_non_luhn_unionpay) work with vaulted schemes and
// with FF1 under luhn any. FF1 under pass or fail recomputes the PAN's check
// digit on detokenize, which would silently "correct" such a PAN, so Validate
// refuses that combination.
//
// # Secrets in errors
//
// No error of this package contains a PAN, a token or any digit of either:
// only field names, rule names, lengths and positions.
package scheme
