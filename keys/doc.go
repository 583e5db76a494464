// Package keys is panvault's PKCS#11 boundary. Every secret-key operation of
// the vault happens here, inside the HSM, and no byte of a working key ever
// exists in this process's memory.
//
// # Key hierarchy
//
// The master key (MK) is an AES-256 token object, sensitive and not
// extractable, found by label. It is made from 2..16 custodian components
// (GenerateComponents, LoadMasterKey): 32 bytes each from the HSM's RNG, each
// with its KCV (AES-CMAC of a zero block, first 3 bytes, 6 hex digits); the
// MK is their XOR and its KCV is checked against the one recorded when the
// components were made. The Go buffers holding components and their XOR
// are zeroed after use. SoftHSM has no XOR key derivation, so the XOR
// happens in Go: during a ceremony, and only then, component and master-key
// bytes are in this process, and not only in Go memory (see Residual risk).
//
// Working keys (KeyType) are generated inside the HSM and leave it only
// wrapped under the MK with CKM_AES_KEY_WRAP_PAD (RFC 5649), as a versioned
// WrappedKey blob whose header (id, version, type, public key, MK KCV) is
// bound by an AES-CMAC tag under the MK. Any HSM holding the same MK loads
// the blob (LoadWrapped) as a sensitive, non-extractable session object
// restricted to its one mechanism (CKA_ALLOWED_MECHANISMS). Because loaded
// keys are not extractable, no key — the MK included — can wrap them out
// again. The MK is deliberately not CKA_TRUSTED: on SoftHSM only the SO may
// set that attribute, the SO can only create public objects, and SoftHSM
// stores public objects' values unencrypted on disk.
//
// Ed25519 keys are supported only where the HSM can wrap them. SoftHSM 2.6.1
// generates them but refuses to wrap them (CKR_KEY_NOT_WRAPPABLE), so
// GenerateKey fails with ErrNotWrappable there. Nothing falls back to
// software keys.
//
// # Sessions, login and threading
//
// A PKCS#11 library is initialised once per process, refcounted by its
// resolved path (CKR_CRYPTOKI_ALREADY_INITIALIZED is tolerated and then
// never finalised by us); it is finalised when the last HSM closes. Login is
// per process and token: Open makes exactly one C_Login, a refused PIN is
// ErrBadPIN at once (SoftHSM has no lockout; real HSMs do, so PINs are never
// retried), and a second HSM on an already logged-in token must present the
// same PIN (compared as a keyed digest).
//
// SoftHSM 2.6 crashes the process when two goroutines use one session, so
// every operation borrows a session from a bounded pool (Config.PoolSize),
// waiting at most until its context ends. A long-lived anchor session keeps
// the login alive and owns the loaded working keys (session objects die
// with the session that created them); it is used under a mutex, for
// loading keys and recovery only.
//
// When a call fails because the session, the login or an object handle is
// gone (C_CloseAllSessions, token reset), the session is evicted and the HSM
// recovers once, shared by all goroutines that saw the failure: a new anchor
// session, one login with the configured PIN (a refusal is latched and every
// later call fails with ErrBadPIN), the MK found again by label, and every
// loaded key unwrapped again from its blob (which the HSM keeps: it is
// ciphertext). The operation is then retried once.
//
// HSM and BlockCipher are safe for concurrent use. Component is not.
// WrappedKey, KeyInfo, KCV and Config are plain values.
//
// # Residual risk: C copies that are never zeroed
//
// Every "zeroed" in this package is true of Go memory only. The PKCS#11
// binding (github.com/miekg/pkcs11 v1.1.2) copies some secrets into C heap
// memory it allocates with calloc and releases with a plain C.free, without
// overwriting them; this package never sees those buffers and cannot zero
// them. The bytes stay in freed heap blocks until the C allocator reuses
// them. They are:
//
//   - CKA_VALUE in C_CreateObject templates (types.go, arena.Allocate and
//     arena.Free): each component while its KCV is computed (kcvOfValue)
//     and the XOR of the components when the master key is imported
//     (importMasterKey);
//   - C_GenerateRandom output: each new component (GenerateComponents);
//   - C_Decrypt output: every plaintext Open returns (PANs and whatever the
//     vault seals);
//   - C_Encrypt and C_EncryptUpdate output: Seal's ciphertexts (harmless)
//     but also the AES outputs of EncryptBlocks and of an FF1 pass
//     (ecbpass.go), which for FF1 are round-function values from which,
//     with the token, a PAN could be recomputed.
//
// Inputs of C_Encrypt, C_Decrypt and C_Sign (plaintexts, messages to MAC)
// are passed to the library by pointer into Go memory, not copied by the
// binding; what the PKCS#11 library does with them inside this process is
// beyond this package (a network or PCIe HSM keeps them inside its
// boundary, SoftHSM does not). Anyone able to read this process's memory, a
// core dump or swap can therefore find such bytes after they were
// "zeroed". We do not patch the binding. Operators should disable core dumps (RLIMIT_CORE 0,
// systemd LimitCORE=0), use no swap or encrypted swap, and run key
// ceremonies (component generation, master-key load and staging) in a
// short-lived process so that its freed heap goes away with it.
//
// # Errors
//
// Errors wrap the sentinels in errors.go (ErrKeyNotFound,
// ErrMasterKeyMissing, ErrKCVMismatch, ErrHSMUnavailable, ErrBadPIN, ...)
// with %w. They never contain a PIN, a component or key bytes; they may
// contain labels, key ids and KCVs.
package keys
