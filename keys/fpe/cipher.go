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
type BlockCipher interface {
	EncryptBlocks(dst, src []byte) error
}
