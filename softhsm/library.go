package softhsm

import (
	"fmt"
	"os"
)

// EnvLib names the environment variable that overrides where the PKCS#11
// library is. When set it must name an existing file: there is no silent
// fallback to the default paths.
const EnvLib = "PANVAULT_PKCS11_LIB"

// DefaultPaths are tried in order when EnvLib is unset. The first is where
// Debian's softhsm2 package installs the library.
var DefaultPaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
}

// FindLibrary returns the path of libsofthsm2.so: $PANVAULT_PKCS11_LIB if
// set, else the first of DefaultPaths that exists. Errors wrap ErrNotFound.
func FindLibrary() (string, error) {
	if p := os.Getenv(EnvLib); p != "" {
		st, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("%w: %s=%s: %w", ErrNotFound, EnvLib, p, err)
		}
		if !st.Mode().IsRegular() {
			return "", fmt.Errorf("%w: %s=%s is not a regular file", ErrNotFound, EnvLib, p)
		}
		return p, nil
	}
	for _, p := range DefaultPaths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: tried %v (install softhsm2 or set %s)", ErrNotFound, DefaultPaths, EnvLib)
}
