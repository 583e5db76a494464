// Package fpe implements the FF1 format-preserving encryption mode of NIST
// SP 800-38G Rev. 1 over an abstract batch block cipher.
//
// # Why this package exists
//
// panvault turns card numbers into tokens that look like card numbers. FF1
// does that without a vault: a token is the FF1 encryption of the PAN's free
// digits under a key that never leaves the HSM. The HSM offers AES and
// nothing FF1-shaped, so the Feistel arithmetic lives here and every AES
// operation goes through [BlockCipher], a single "encrypt these independent
// blocks (ECB)" call. Tests and benchmarks run the same code on crypto/aes
// (see package fpetest); production runs it on an HSM-resident key.
//
// # Why batches
//
// An HSM call costs microseconds whatever it carries, so the number of calls
// matters more than the number of blocks. FF1's round function is a CBC-MAC
// over P || Q where P and the tweak part of Q are the same in every round.
// The chaining value after those blocks is computed once per (length, tweak)
// and then each round of a whole batch is one EncryptBlocks call over one
// block per item. A batch therefore costs
//
//	calls = 10 + max over its distinct tweaks T of (1 + F(T) - c(T))
//
// where F(T) = floor((t+pad)/16) is the number of blocks of Q holding only
// tweak and padding (t = len(T), pad = (-t-b-1) mod 16, b = byte length of
// NUM(B), at most 12 under the length rule below), and c(T) is 1 when
// CIPH(P) for this input length and tweak length is already cached (it is,
// per FF1, for tweaks shorter than 32 bytes after their first use). All
// distinct tweaks advance through their prefix chains together, one call per
// step. For 16-digit inputs (b = 4) with tweaks of at most 11 bytes that is
// 11 calls the first time and 10 afterwards, whatever the batch size and
// however many distinct tweaks it mixes; a 20-byte tweak adds one call, a
// 40-byte tweak three (F=2, P not cached). Because b <= 12, the part of Q
// that changes between rounds always fits in Q's last block and FF1's S
// never needs more than the first block of R (d <= 16), so no round needs a
// second call.
//
// A call still has a fixed cost inside an HSM (SoftHSM builds a fresh
// cipher context and key schedule on every C_EncryptInit). A cipher that
// also implements [PassCipher] gets all the calls of one FF1 call (single
// or batch) through one [Pass]: an HSM-backed one then sets the key up once
// per FF1 call and runs each step as one C_EncryptUpdate on the same
// session.
//
// # Domain
//
// Radix 2..36 with the alphabet 0123456789abcdefghijklmnopqrstuvwxyz (the
// first radix symbols, lower case only). A length n is accepted when
// radix^n >= 1,000,000 (SP 800-38G Rev. 1) and n <= 2*floor(log_radix(2^96)),
// the project's upper bound (56 digits in radix 10). [CheckLength] applies
// both rules. Tweaks are 0..maxTweakLen bytes ([DefaultMaxTweakLen] unless
// configured).
//
// # Two arithmetic paths
//
// When radix^ceil(n/2) <= 2^63 (radix 10 up to 36 digits, which covers every
// PAN) the halves are uint64 values and the rounds use math/bits for the
// 96-bit reduction: no big.Int and no allocation per round. Longer inputs use
// math/big. Tests and the fuzz target check that both paths agree.
//
// # Secrets
//
// Numerals are card digits: no error message of this package contains a
// numeral or a value derived from one (positions and lengths only), and
// scratch buffers are cleared before they are reused. Errors from the
// BlockCipher are wrapped and returned, never logged.
package fpe
