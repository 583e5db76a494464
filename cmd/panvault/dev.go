package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/panvault/panvault/vault/devcluster"
)

func newDevCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var nodes int
	var dir, logFormat string
	cmd := &cobra.Command{
		Use:   "dev [--nodes 3] [--dir DIR]",
		Short: "Run a local cluster on SoftHSM with a dev CA until interrupted",
		Long: `Run a local panvault cluster: one "panvault server" process per node on
127.0.0.1, each with its own SoftHSM token; a dev CA with node, admin and
client certificates; master-key components, and the master key loaded into
every token; keys pan-encryption, pan-fingerprint, pan-fpe and payments-p256;
schemes pan (vaulted, keeps 6+4, Luhn fail), pan-det (vaulted, deterministic)
and pan-ff1 (FF1, keeps the leading 6, Luhn fail); and three key custodians,
alice, bob and carol, with key files in DIR/custodians/ and quorum 2, so that
ceremonies ("panvault ceremony") can be tried at once.

It prints the export line a client needs and writes it to DIR/client.env
(and the admin identity's to DIR/admin.env), then runs until SIGINT or
SIGTERM and stops the nodes. Node logs: DIR/nodeN/node.log.

Running it again on the same DIR restarts the same cluster: tokens, CA,
master key, data and addresses are reused. Remove DIR to start afresh.
Dev mode only: PINs, master-key components and custodian keys are kept in
files under DIR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), io, cf, cmd.Flags().Changed("nodes"), nodes, dir, logFormat)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 3, "number of nodes of a new cluster")
	cmd.Flags().StringVar(&dir, "dir", ".dev", "cluster directory (reused when it exists)")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", `progress log format: "text" or "json"`)
	return cmd
}

func runDev(ctx context.Context, io *stdio, cf *clientFlags, nodesSet bool, nodes int, dir, logFormat string) error {
	log, err := newLogger(io.err, logFormat, "info")
	if err != nil {
		return &usageError{err}
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locate the panvault binary: %w", err)
	}
	if !nodesSet {
		// An existing cluster keeps its size unless --nodes is given.
		if _, statErr := os.Stat(filepath.Join(dir, "devcluster.json")); statErr == nil {
			nodes = 0
		}
	}
	start := time.Now()
	c, err := devcluster.Start(ctx, devcluster.Options{Dir: dir, Nodes: nodes, Binary: bin, Log: log})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while starting: %w", err)
		}
		return err
	}
	log.Info("cluster ready", "dir", c.Dir(), "took", time.Since(start).Round(time.Millisecond).String())
	if cf.json() {
		envMap := func(e devcluster.Env) map[string]string {
			m := map[string]string{}
			for _, kv := range e.Vars() {
				k, v, _ := strings.Cut(kv, "=")
				m[k] = v
			}
			return m
		}
		if err := writeJSON(io.out, map[string]any{"dir": c.Dir(), "client_env_file": c.ClientEnvPath(),
			"admin_env_file": c.AdminEnvPath(), "client": envMap(c.ClientEnv()), "admin": envMap(c.AdminEnv()),
			"custodians_dir": c.CustodiansDir(), "custodians": devcluster.DevCustodians, "quorum": devcluster.DevQuorum}); err != nil {
			_ = c.Stop()
			return err
		}
	} else {
		fmt.Fprintf(io.out, "# client identity (also in %s):\n%s\n", c.ClientEnvPath(), c.ClientEnv().Exports())
		fmt.Fprintf(io.out, "# admin identity: . %s\n", c.AdminEnvPath())
		fmt.Fprintf(io.out, "# try: echo 4111111111111111 | panvault tokenize --scheme %s\n", devcluster.SchemePAN)
		fmt.Fprintf(io.out, "# custodians %s (quorum %d): --custodian-key %s\n",
			strings.Join(devcluster.DevCustodians, ", "), devcluster.DevQuorum, c.CustodianKeyPath("NAME"))
	}
	<-ctx.Done()
	log.Info("interrupted; stopping nodes")
	if err := c.Stop(); err != nil {
		return fmt.Errorf("stopping nodes: %w", err)
	}
	return nil
}
