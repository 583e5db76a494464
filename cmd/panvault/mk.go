package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/panvault/panvault/keys"
)

func newMKCmd(io *stdio, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mk",
		Short: "Master-key ceremonies: make components, load the master key, show its status",
		Long: `The master key (MK) protects every working key: they are wrapped under it and
replicated wrapped. It is the XOR of N custodian components, so no single
person knows it. "mk components" makes the components from the HSM's RNG, one
file each with its key check value (KCV); "mk load" loads them into a node's
token, checking each component's KCV and the MK's KCV at the end.

These commands use the [hsm] section of a server configuration file.`,
	}
	var cfgPath, outDir string
	var count int
	var recipients []string
	comps := &cobra.Command{
		Use:   "components --config FILE --count N --out DIR [--recipient AGE-RECIPIENT ...]",
		Short: "Generate N master-key components from the HSM RNG (one file each, mode 0600)",
		Long: `Generate N master-key components from the HSM's RNG and write one file per
component (mode 0600, never overwriting), plus master-kcv.txt. Only KCVs are
printed.

With --recipient (once per component, in order: an age recipient "age1..." or
a file holding one), component I is encrypted with age to the I-th recipient
and written as component-I.age: a public header with the component's index,
KCV and the master key's KCV, so that its custodian can check it without
decrypting, then the age-encrypted component. Without --recipient the files
are plaintext (component-I.txt).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if len(recipients) > 0 && !c.Flags().Changed("count") {
				count = len(recipients)
			}
			return runMKComponents(c.Context(), io, cfgPath, count, outDir, recipients, cf.json())
		},
	}
	comps.Flags().StringVar(&cfgPath, "config", "", "server configuration file (its [hsm] section is used)")
	comps.Flags().IntVar(&count, "count", 3, fmt.Sprintf("number of components (%d to %d; default: the number of --recipient)", keys.MinComponents, keys.MaxComponents))
	comps.Flags().StringVar(&outDir, "out", "", "directory for the component files (created 0700; files are never overwritten)")
	comps.Flags().StringArrayVar(&recipients, "recipient", nil, "age recipient (age1...) or file holding one, for each component in order")
	_ = comps.MarkFlagRequired("config")
	_ = comps.MarkFlagRequired("out")

	var loadCfg, masterKCV string
	var files, identities []string
	load := &cobra.Command{
		Use:   "load --config FILE --component FILE... [--identity AGE-KEY-FILE ...]",
		Short: "Load the master key into the node's token from all its components",
		Long: `Load the master key into the node's token from all its component files,
plaintext (component-I.txt) or encrypted with age (component-I.age, decrypted
with the --identity files given: each custodian's age identity). Each
component's KCV is shown and checked inside the HSM, then the master key's.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runMKLoad(c.Context(), io, loadCfg, files, identities, masterKCV, cf.json())
		},
	}
	load.Flags().StringVar(&loadCfg, "config", "", "server configuration file (its [hsm] section is used)")
	load.Flags().StringArrayVar(&files, "component", nil, "component file (repeat for every component)")
	load.Flags().StringArrayVar(&identities, "identity", nil, "age identity file that decrypts encrypted components (repeatable; mode 0600)")
	load.Flags().StringVar(&masterKCV, "master-kcv", "", "expected master key KCV (default: as recorded in the component files)")
	_ = load.MarkFlagRequired("config")
	_ = load.MarkFlagRequired("component")

	var stCfg string
	status := &cobra.Command{
		Use:   "status --config FILE",
		Short: "Show whether the node's token holds the master key, and its KCV",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return runMKStatus(c.Context(), io, stCfg, cf.json())
		},
	}
	status.Flags().StringVar(&stCfg, "config", "", "server configuration file (its [hsm] section is used)")
	_ = status.MarkFlagRequired("config")

	var keygenOut string
	keygen := &cobra.Command{
		Use:   "age-keygen --out FILE",
		Short: "Make an age identity for a custodian (mode 0600) and print its recipient",
		Long: `Make an X25519 age identity for a custodian, write it to FILE (mode 0600,
never overwriting) and print its public recipient (age1...), which the
ceremony's operator passes to "mk components --recipient". The age tool's
age-keygen makes compatible files.`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			rcpt, err := generateAgeIdentity(keygenOut)
			if err != nil {
				return err
			}
			if cf.json() {
				return writeJSON(io.out, map[string]string{"identity_file": keygenOut, "recipient": rcpt})
			}
			fmt.Fprintf(io.out, "%s\n", rcpt)
			return nil
		},
	}
	keygen.Flags().StringVar(&keygenOut, "out", "", "identity file to create")
	_ = keygen.MarkFlagRequired("out")

	cmd.AddCommand(comps, load, status, keygen, newMKStageCmd(io, cf), newMKClusterStatusCmd(io, cf), newMKDestroyOldCmd(io, cf))
	return cmd
}

func openHSMFromConfig(ctx context.Context, path string) (*keys.HSM, *serverConfig, error) {
	cfg, err := loadHSMConfig(path)
	if err != nil {
		return nil, nil, err
	}
	hsm, err := openHSM(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return hsm, cfg, nil
}

type componentJSON struct {
	Index     int    `json:"index"`
	File      string `json:"file"`
	KCV       string `json:"kcv"`
	Recipient string `json:"recipient,omitempty"`
	Encrypted bool   `json:"encrypted,omitempty"`
}

func runMKComponents(ctx context.Context, io *stdio, cfgPath string, count int, outDir string, recipientArgs []string, asJSON bool) error {
	if count < keys.MinComponents || count > keys.MaxComponents {
		return &usageError{fmt.Errorf("--count must be from %d to %d", keys.MinComponents, keys.MaxComponents)}
	}
	if len(recipientArgs) > 0 && len(recipientArgs) != count {
		return &usageError{fmt.Errorf("%d --recipient for %d components: give one per component, in order", len(recipientArgs), count)}
	}
	recipients := make([]age.Recipient, len(recipientArgs))
	recipientNames := make([]string, len(recipientArgs))
	for i, a := range recipientArgs {
		r, name, err := parseRecipient(a)
		if err != nil {
			return &usageError{err}
		}
		for j := range i {
			if recipientNames[j] == name {
				return &usageError{fmt.Errorf("--recipient %d and %d are the same recipient: one custodian would hold two components", j+1, i+1)}
			}
		}
		recipients[i], recipientNames[i] = r, name
	}
	ext := ".txt"
	if len(recipients) > 0 {
		ext = ".age"
	}
	paths := make([]string, count)
	for i := range paths {
		paths[i] = filepath.Join(outDir, fmt.Sprintf("component-%d%s", i+1, ext))
		if _, err := os.Lstat(paths[i]); err == nil {
			return fmt.Errorf("%s exists: component files are never overwritten", paths[i])
		}
	}
	hsm, _, err := openHSMFromConfig(ctx, cfgPath)
	if err != nil {
		return err
	}
	defer hsm.Close()
	set, err := hsm.GenerateComponents(ctx, count)
	if err != nil {
		return fmt.Errorf("generate components: %w", err)
	}
	defer set.Zero()
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return err
	}
	out := struct {
		Components []componentJSON `json:"components"`
		MasterKCV  string          `json:"master_kcv"`
	}{MasterKCV: set.MasterKCV.String()}
	for i, comp := range set.Components {
		b := marshalComponent(i+1, count, comp, set.MasterKCV)
		cj := componentJSON{Index: i + 1, File: paths[i], KCV: comp.KCV().String()}
		if len(recipients) > 0 {
			h := componentHeader{Index: i + 1, Count: count, KCV: comp.KCV(), MasterKCV: set.MasterKCV, Recipient: recipientNames[i]}
			enc, err := encryptComponent(h, b, recipients[i])
			clear(b)
			if err != nil {
				return fmt.Errorf("component %d: %w", i+1, err)
			}
			b, cj.Recipient = enc, recipientNames[i]
		}
		err := writeNewFile(paths[i], b, 0o600)
		clear(b)
		if err != nil {
			return err
		}
		out.Components = append(out.Components, cj)
	}
	if err := writeNewFile(filepath.Join(outDir, "master-kcv.txt"), []byte(set.MasterKCV.String()+"\n"), 0o644); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(io.out, out)
	}
	for _, c := range out.Components {
		if c.Recipient != "" {
			fmt.Fprintf(io.out, "component %d of %d: KCV %s -> %s (age, to %s)\n", c.Index, count, c.KCV, c.File, c.Recipient)
			continue
		}
		fmt.Fprintf(io.out, "component %d of %d: KCV %s -> %s\n", c.Index, count, c.KCV, c.File)
	}
	fmt.Fprintf(io.out, "master key KCV: %s (record it; mk load checks it)\n", out.MasterKCV)
	return nil
}

// writeNewFile creates path exclusively with mode perm and writes b.
func writeNewFile(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runMKLoad(ctx context.Context, io *stdio, cfgPath string, files, identityFiles []string, masterKCV string, asJSON bool) error {
	ids, err := readIdentities(identityFiles)
	if err != nil {
		return &usageError{err}
	}
	parsed, encrypted, err := readComponentSet(files, ids)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range parsed {
			c.Zero()
		}
	}()
	want := parsed[0].MasterKCV
	if masterKCV != "" {
		k, err := keys.ParseKCV(masterKCV)
		if err != nil {
			return &usageError{fmt.Errorf("--master-kcv: want 6 hex digits")}
		}
		if k != want {
			return fmt.Errorf("--master-kcv %s differs from the KCV recorded in the component files (%s)", k, want)
		}
	}
	if !asJSON {
		for _, c := range parsed {
			how := ""
			if encrypted[c.Path] {
				how = ", decrypted with age"
			}
			fmt.Fprintf(io.out, "component %d of %d (%s%s): KCV %s\n", c.Index, c.Count, c.Path, how, c.KCV)
		}
	}
	hsm, cfg, err := openHSMFromConfig(ctx, cfgPath)
	if err != nil {
		return err
	}
	defer hsm.Close()
	comps := make([]*keys.Component, len(parsed))
	for i, c := range parsed {
		comp, err := keys.NewComponent(c.Value, c.KCV)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Path, err)
		}
		comps[i] = comp
	}
	got, err := hsm.LoadMasterKey(ctx, comps, want)
	if err != nil {
		var ce *keys.ComponentError
		if errors.As(err, &ce) && ce.Index >= 1 && ce.Index <= len(parsed) {
			return fmt.Errorf("component %s: computed KCV %s, file records %s: %w", parsed[ce.Index-1].Path, ce.Got, ce.Want, err)
		}
		if errors.Is(err, keys.ErrMasterKeyExists) {
			kcv, _ := hsm.MasterKeyKCV()
			return fmt.Errorf("token %q already holds a master key (KCV %s): %w", cfg.HSM.TokenLabel, kcv, err)
		}
		return fmt.Errorf("load master key: %w", err)
	}
	if asJSON {
		cs := make([]componentJSON, len(parsed))
		for i, c := range parsed {
			cs[i] = componentJSON{Index: c.Index, File: c.Path, KCV: c.KCV.String(), Encrypted: encrypted[c.Path]}
		}
		return writeJSON(io.out, map[string]any{"components": cs, "master_kcv": got.String(), "token": cfg.HSM.TokenLabel, "loaded": true})
	}
	fmt.Fprintf(io.out, "every component matches its KCV\nmaster key loaded into token %q: KCV %s (matches)\n", cfg.HSM.TokenLabel, got)
	return nil
}

func runMKStatus(ctx context.Context, io *stdio, cfgPath string, asJSON bool) error {
	hsm, cfg, err := openHSMFromConfig(ctx, cfgPath)
	if err != nil {
		return err
	}
	defer hsm.Close()
	kcv, ok := hsm.MasterKeyKCV()
	if asJSON {
		m := map[string]any{"token": cfg.HSM.TokenLabel, "serial": hsm.Token().Serial, "master_key_present": ok}
		if ok {
			m["master_kcv"] = kcv.String()
		}
		return writeJSON(io.out, m)
	}
	if !ok {
		fmt.Fprintf(io.out, "token %q: no master key (label %q)\n", cfg.HSM.TokenLabel, mkLabel(cfg))
		return nil
	}
	fmt.Fprintf(io.out, "token %q: master key present, KCV %s\n", cfg.HSM.TokenLabel, kcv)
	return nil
}
