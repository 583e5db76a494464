package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/vault/ceremony"
)

// envPKCS11Lib names the PKCS#11 library of custodian tokens when a
// pkcs11: URI has no module-path.
const envPKCS11Lib = "PANVAULT_PKCS11_LIB"

// The token signer drops into every ceremony function unchanged.
var (
	_ ceremony.Signer = (*keys.TokenSigner)(nil)
	_ ceremony.Signer = (*ceremony.FileSigner)(nil)
)

// custodianKeyFlags selects a custodian's signing key: a key file (dev
// mode) or a key in the custodian's own PKCS#11 token.
type custodianKeyFlags struct {
	key string
	lib string
}

func (f *custodianKeyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.key, "custodian-key", "",
		"custodian signing key: a key file (PEM PKCS#8, mode 0600) or pkcs11:token=LABEL;object=KEYLABEL?pin-source=file:/path")
	cmd.Flags().StringVar(&f.lib, "pkcs11-lib", "", "PKCS#11 library for a pkcs11: key without module-path (default $"+envPKCS11Lib+")")
	_ = cmd.MarkFlagRequired("custodian-key")
}

// custodianKey is an open custodian signing key.
type custodianKey struct {
	ceremony.Signer
	where string // the file path or the URI without its PIN source
	close func() error
}

// Close releases the token, if any.
func (k *custodianKey) Close() error {
	if k.close == nil {
		return nil
	}
	return k.close()
}

// Fingerprint returns the public key's fingerprint.
func (k *custodianKey) Fingerprint() (ceremony.Fingerprint, error) {
	der, err := ceremony.MarshalPublicKey(k.Public())
	if err != nil {
		return ceremony.Fingerprint{}, err
	}
	return ceremony.FingerprintOf(der), nil
}

func (f *custodianKeyFlags) tokenConfig() (keys.PKCS11URI, keys.Config, error) {
	u, err := keys.ParsePKCS11URI(f.key)
	if err != nil {
		return u, keys.Config{}, &usageError{fmt.Errorf("--custodian-key: %w", err)}
	}
	cfg, err := u.Config(firstNonEmpty(f.lib, os.Getenv(envPKCS11Lib)))
	if err != nil {
		if errors.Is(err, keys.ErrPKCS11URI) {
			return u, cfg, &usageError{fmt.Errorf("--custodian-key: %w (or --pkcs11-lib)", err)}
		}
		return u, cfg, fmt.Errorf("--custodian-key: %w", err)
	}
	return u, cfg, nil
}

// open opens the selected key.
func (f *custodianKeyFlags) open(ctx context.Context) (*custodianKey, error) {
	if !keys.IsPKCS11URI(f.key) {
		s, err := ceremony.LoadKeyFile(f.key)
		if err != nil {
			return nil, fmt.Errorf("--custodian-key: %w", err)
		}
		return &custodianKey{Signer: s, where: f.key}, nil
	}
	u, cfg, err := f.tokenConfig()
	if err != nil {
		return nil, err
	}
	s, err := keys.OpenTokenSigner(ctx, cfg, u.Object)
	if err != nil {
		return nil, fmt.Errorf("--custodian-key: %w", err)
	}
	u.PINSource = ""
	return &custodianKey{Signer: s, where: u.String(), close: s.Close}, nil
}

// generate makes a new key: a key file, or a key pair inside the token.
func (f *custodianKeyFlags) generate(ctx context.Context, alg ceremony.Algorithm) (*custodianKey, error) {
	if !keys.IsPKCS11URI(f.key) {
		s, err := ceremony.GenerateKeyFile(f.key, alg)
		if err != nil {
			return nil, fmt.Errorf("--custodian-key: %w", err)
		}
		return &custodianKey{Signer: s, where: f.key}, nil
	}
	u, cfg, err := f.tokenConfig()
	if err != nil {
		return nil, err
	}
	t := keys.KeyEd25519
	if alg == ceremony.AlgECDSAP256 {
		t = keys.KeyECDSAP256
	}
	s, err := keys.GenerateTokenSigner(ctx, cfg, u.Object, t)
	if err != nil {
		return nil, fmt.Errorf("--custodian-key: %w", err)
	}
	u.PINSource = ""
	return &custodianKey{Signer: s, where: u.String(), close: s.Close}, nil
}

// errDeclined: the custodian did not confirm; nothing was signed.
var errDeclined = errors.New("not confirmed: nothing was signed")

// confirm asks a yes/no question on the terminal (stderr, reading stdin)
// unless yes is set. Without a terminal it refuses: a custodian reads what
// they sign, and says so with --yes when scripting.
func confirm(io *stdio, yes bool, question string) error {
	if yes {
		return nil
	}
	f, ok := io.in.(*os.File)
	if !ok || !isTerminal(f) {
		return &usageError{errors.New("stdin is not a terminal: read the text above, then run again with --yes to sign it")}
	}
	fmt.Fprintf(io.err, "%s [y/N] ", question)
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return errDeclined
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errDeclined
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
