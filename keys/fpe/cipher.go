package fpe

// BlockSize is the AES block size in bytes.
const BlockSize = 16

// BlockCipher is AES under one fixed key, in ECB form.
//
// EncryptBlocks encrypts len(src)/16 independent blocks of src into dst
// (len(dst) == len(src), a multiple of 16, at least 16). dst and src do not
// overlap. An implementation must always use the same key (FF1 caches values
// derived from it) and must be safe for concurrent use, because an [FF1] is.
// A batch of N items hands a call N blocks (N*16 bytes); an implementation
// with a message size limit (an HSM) may split the call internally. An error
// means no block of dst may be used; FF1 returns it wrapped in
// [ErrCipher] and leaves its inputs unchanged.
//
// A BlockCipher may also implement [PassCipher]; FF1 then runs all the
// calls of one Encrypt, Decrypt or batch through one [Pass].
type BlockCipher interface {
	EncryptBlocks(dst, src []byte) error
}

// PassCipher is an optional interface of a [BlockCipher] whose calls have a
// fixed cost worth sharing (an HSM: a session and an operation set-up per
// call). One FF1 call (single or batch) opens one pass, makes all its
// EncryptBlocks calls (the prefix steps and the ten rounds) through it, in
// order, from one goroutine, and closes it exactly once, after success or
// error. ECB blocks are independent, so an implementation may keep one
// multi-part operation open for the whole pass (an HSM: one C_EncryptInit,
// one C_EncryptUpdate per call, C_EncryptFinal at Close), and may redo a
// single failed call on a fresh operation.
//
// OpenPass itself must be safe for concurrent use; the Pass it returns is
// used by one goroutine at a time. OpenPass does not fail: an implementation
// that must acquire something (a session) does so on the pass's first
// EncryptBlocks, so that every error reaches FF1 through EncryptBlocks.
type PassCipher interface {
	BlockCipher
	OpenPass() Pass
}

// Pass is a sequence of EncryptBlocks calls opened by [PassCipher.OpenPass].
// EncryptBlocks has the contract of [BlockCipher.EncryptBlocks]. Close ends
// the pass and releases what it holds; it is called exactly once, and no
// EncryptBlocks follows it. Close reports nothing: every block a successful
// EncryptBlocks returned is final, so a failure to finish the underlying
// operation is the implementation's to clean up (an HSM discards the
// session), not a reason to reject the results.
type Pass interface {
	EncryptBlocks(dst, src []byte) error
	Close()
}
