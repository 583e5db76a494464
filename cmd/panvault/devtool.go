package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/panvault/panvault/softhsm"
)

// newDevtoolCmd holds hidden helpers that `panvault dev` runs as child
// processes. SoftHSM reads its configuration once per process, so work on one
// node's token directory happens in a process of its own.
func newDevtoolCmd(io *stdio) *cobra.Command {
	cmd := &cobra.Command{Use: "devtool", Hidden: true, Short: "helpers for panvault dev (not for production)"}
	var dir, label, pinFile, soPINFile string
	initToken := &cobra.Command{
		Use:   "init-token --softhsm-dir DIR --label L --pin-file F --so-pin-file F",
		Short: "Create a SoftHSM token in DIR unless one with the label exists",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			env, err := softhsm.Setup(dir)
			if err != nil {
				return err
			}
			toks, err := env.Tokens()
			if err != nil {
				return err
			}
			for _, t := range toks {
				if t.Label == label {
					fmt.Fprintf(io.out, "token %q exists (serial %s)\n", label, t.Serial)
					return nil
				}
			}
			pin, err := readSecretFile("--pin-file", pinFile)
			if err != nil {
				return err
			}
			soPIN, err := readSecretFile("--so-pin-file", soPINFile)
			if err != nil {
				return err
			}
			tok, err := env.CreateTokenWithPINs(label, soPIN, pin)
			if err != nil {
				return err
			}
			fmt.Fprintf(io.out, "token %q created (serial %s)\n", tok.Label, tok.Serial)
			return nil
		},
	}
	f := initToken.Flags()
	f.StringVar(&dir, "softhsm-dir", "", "SoftHSM directory (softhsm2.conf and tokens/ are made in it)")
	f.StringVar(&label, "label", "", "token label")
	f.StringVar(&pinFile, "pin-file", "", "user PIN file (mode 0600)")
	f.StringVar(&soPINFile, "so-pin-file", "", "security officer PIN file (mode 0600)")
	for _, n := range []string{"softhsm-dir", "label", "pin-file", "so-pin-file"} {
		_ = initToken.MarkFlagRequired(n)
	}
	cmd.AddCommand(initToken)
	return cmd
}
