// Package fpetest provides what tests and benchmarks of FF1 users need: a
// software AES BlockCipher, a BlockCipher wrapper that counts calls and can
// inject failures, a wrapper that adds the fpe.PassCipher interface and
// records how passes are used (so FF1's pass path runs without an HSM), the NIST SP 800-38G FF1 sample vectors, and benchmark
// helpers that can be pointed at any BlockCipher (an HSM-backed one too).
//
// It exists so that code depending on keys/fpe can test against the real
// FF1 on crypto/aes without an HSM. The software cipher holds key bytes in Go
// memory: it is for tests, benchmarks and the NIST vectors only, never for a
// production key.
package fpetest
