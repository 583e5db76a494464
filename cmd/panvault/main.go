// Command panvault is the panvault binary: the vault server, the local dev
// cluster, client and admin commands, and the master-key ceremony tools.
//
// It holds wiring and flags only; the logic lives in the packages it calls.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// stdio carries the process's streams so that commands can be run in tests.
type stdio struct {
	in  io.Reader
	out io.Writer
	err io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(code)
}

// exitError carries an exit status. A nil err means the command already
// reported what failed (for example failed batch items) and only the status
// remains to be set.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// errItemsFailed is returned when some items of a batch failed (each already reported).
var errItemsFailed = &exitError{code: 1}

// usageError marks a command-line mistake (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, io *stdio) int {
	root := newRootCmd(io)
	root.SetArgs(args)
	root.SetIn(io.in)
	root.SetOut(io.out)
	root.SetErr(io.err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ex *exitError
	if errors.As(err, &ex) && ex.err == nil {
		return ex.code
	}
	if cobraUsageError(err) {
		err = &usageError{err}
	}
	reportError(io, root, err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	if ex != nil {
		return ex.code
	}
	return 1
}

func newRootCmd(io *stdio) *cobra.Command {
	root := &cobra.Command{
		Use:   "panvault",
		Short: "panvault: card-data tokenization vault",
		Long: `panvault turns card numbers (PANs) into tokens and back, signs payment
messages with HSM keys, and replicates its state across a Raft cluster.

Client and admin commands reach a node over mTLS using these variables (or the
matching flags):
  PANVAULT_ADDR    host:port of a node; a comma-separated list fails over
  PANVAULT_CACERT  CA certificate (PEM) that signed the nodes' certificates
  PANVAULT_CERT    this client's certificate (PEM)
  PANVAULT_KEY     this client's private key (PEM)
"panvault dev" writes them to DIR/client.env and DIR/admin.env.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	cf := &clientFlags{}
	cf.register(root)
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return cf.checkOutput() }
	root.AddCommand(
		newServerCmd(io),
		newDevCmd(io, cf),
		newBenchCmd(io, cf),
		newTokenizeCmd(io, cf),
		newDetokenizeCmd(io, cf),
		newDeleteTokenCmd(io, cf),
		newSignCmd(io, cf),
		newVerifyCmd(io, cf),
		newSchemeCmd(io, cf),
		newKeyCmd(io, cf),
		newClusterCmd(io, cf),
		newMKCmd(io, cf),
		newCustodianCmd(io, cf),
		newCeremonyCmd(io, cf),
		newRetokenizeCmd(io, cf),
		newDevtoolCmd(io),
		newAuditCmd(io, cf),
	)
	markArgErrors(root)
	return root
}

// markArgErrors makes every argument-count error of c and its subcommands a
// usage error (exit status 2). A command group (subcommands, nothing to run
// itself) answers an argument that names none of its subcommands with
// "unknown command", as the root does; cobra would print the group's help
// and exit 0.
func markArgErrors(c *cobra.Command) {
	if v := c.Args; v != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := v(cmd, args); err != nil {
				var ue *usageError
				if errors.As(err, &ue) {
					return err
				}
				return &usageError{err}
			}
			return nil
		}
	}
	if c.HasParent() && c.HasSubCommands() && !c.Runnable() {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &usageError{fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
			}
			return cmd.Help()
		}
	}
	for _, sub := range c.Commands() {
		markArgErrors(sub)
	}
}

// cobraUsageError reports whether err is one of the two usage errors cobra
// returns as plain errors, without a hook to type them: an unknown command
// (or an argument where a command group expects a subcommand) and a required
// flag left out.
func cobraUsageError(err error) bool {
	m := err.Error()
	return strings.HasPrefix(m, "unknown command ") || strings.HasPrefix(m, "required flag(s) ")
}
