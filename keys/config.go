package keys

import (
	"fmt"
	"runtime"
)

// DefaultMasterKeyLabel is the label the master key is stored and found under
// when Config.MasterKeyLabel is empty.
const DefaultMasterKeyLabel = "panvault-master-key"

// MaxPoolSize bounds Config.PoolSize.
const MaxPoolSize = 1024

// Config says which token to open and how. The zero value is not usable:
// Lib, TokenLabel and PIN are required. A plain value: safe to copy and to
// read concurrently.
type Config struct {
	// Lib is the path of the PKCS#11 library (for SoftHSM see package softhsm).
	Lib string
	// TokenLabel finds the token; slot IDs are not stable, labels are.
	TokenLabel string
	// PIN is the user PIN. It is kept in memory for the life of the HSM
	// because re-establishing a lost login needs it. Never logged; String()
	// masks it. Read it from a file, not from a flag.
	PIN string
	// PoolSize bounds the number of concurrent sessions (and thus of
	// concurrent PKCS#11 operations). 0 means 4 per CPU, at least 8.
	PoolSize int
	// MasterKeyLabel is the CKA_LABEL of the master key. Empty means
	// DefaultMasterKeyLabel.
	MasterKeyLabel string
}

// String describes the config without its PIN.
func (c Config) String() string {
	pin := "unset"
	if c.PIN != "" {
		pin = "set"
	}
	return fmt.Sprintf("keys.Config{Lib:%q TokenLabel:%q PIN:%s PoolSize:%d MasterKeyLabel:%q}",
		c.Lib, c.TokenLabel, pin, c.PoolSize, c.MasterKeyLabel)
}

// GoString is String, so %#v does not print the PIN either.
func (c Config) GoString() string { return c.String() }

// withDefaults validates c and fills in defaults. Errors name the field.
func (c Config) withDefaults() (Config, error) {
	if c.Lib == "" {
		return c, fmt.Errorf("%w: Lib is required", ErrInvalidConfig)
	}
	if err := validTokenLabel(c.TokenLabel); err != nil {
		return c, fmt.Errorf("%w: TokenLabel: %w", ErrInvalidConfig, err)
	}
	if c.PIN == "" {
		return c, fmt.Errorf("%w: PIN is required", ErrInvalidConfig)
	}
	if c.PoolSize < 0 || c.PoolSize > MaxPoolSize {
		return c, fmt.Errorf("%w: PoolSize must be 0..%d", ErrInvalidConfig, MaxPoolSize)
	}
	if c.PoolSize == 0 {
		c.PoolSize = max(8, 4*runtime.GOMAXPROCS(0))
	}
	if c.MasterKeyLabel == "" {
		c.MasterKeyLabel = DefaultMasterKeyLabel
	}
	if len(c.MasterKeyLabel) > 128 {
		return c, fmt.Errorf("%w: MasterKeyLabel longer than 128 bytes", ErrInvalidConfig)
	}
	return c, nil
}
