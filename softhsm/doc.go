// Package softhsm sets up SoftHSM 2 for tests and `panvault dev`: it finds
// libsofthsm2.so, writes a softhsm2.conf that points at a token directory of
// our own, and creates and deletes tokens (label, SO PIN, user PIN). Nothing
// in the request path uses it; production points keys.Config at a real HSM.
//
// # One token directory per process
//
// SoftHSM reads SOFTHSM2_CONF when the library is initialised, and package
// keys initialises each PKCS#11 library once per process (refcounted). So a
// process has one Env: Setup(dir) for a persistent directory, or Temp() for
// a throwaway one. Setup sets SOFTHSM2_CONF before anything initialises the
// library, and refuses (ErrConflict) once the library is initialised with
// another configuration. Simulated nodes get one token each in that
// directory, which is how several nodes with separate HSMs run in one
// process.
//
// # Tokens are created in-process
//
// A token made by softhsm2-util (another process) after this process
// initialised the library stays invisible until the library is initialised
// again, which does not happen while any HSM is open. So tokens are created
// through PKCS#11 C_InitToken on a free slot, in this process, via
// keys.InitToken, which uses the same shared module as keys.Open: the token
// is visible to every HSM at once, and tests may create tokens in parallel.
//
// # Deleting tokens
//
// Token.Delete moves the token's directory out of the token directory and
// removes it. SoftHSM then shows the slot as uninitialised but refuses to
// reuse it until the library is next initialised; keys.InitToken skips such
// slots. A token still open by an HSM of this process is not deleted
// (ErrTokenInUse). The Temp directory disappears with its last token.
//
// Everything here is safe for concurrent use. Token values hold PINs in
// memory; they are for tests and dev mode, and never printed (String masks
// them).
package softhsm
