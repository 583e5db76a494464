package devcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"
)

// mkDir holds the dev master-key components. A real deployment gives each
// component to one custodian; a dev cluster keeps them to set up added nodes.
func (c *Cluster) mkDir() string { return filepath.Join(c.opts.Dir, "mk") }

// ensureMasterKeys makes the components once (through the first active
// node's token RNG) and loads the master key into every active node's token
// that lacks it.
func (c *Cluster) ensureMasterKeys(ctx context.Context) error {
	want, err := c.masterKCV()
	if errors.Is(err, fs.ErrNotExist) {
		if entries, _ := os.ReadDir(c.mkDir()); len(entries) > 0 {
			return fmt.Errorf("%w: %s holds files but no master-kcv.txt (an interrupted ceremony): remove it or the whole directory",
				ErrMismatch, c.mkDir())
		}
		var first string
		for _, n := range c.st.Nodes {
			if !n.Removed {
				first = n.ID
				break
			}
		}
		p := pathsFor(c.opts.Dir, first)
		if _, err := c.runStep(ctx, p.SoftHSMConf, "mk", "components", "--config", p.Config,
			"--count", strconv.Itoa(c.opts.Components), "--out", c.mkDir()); err != nil {
			return err
		}
		want, err = c.masterKCV()
	}
	if err != nil {
		return err
	}
	c.opts.Log.Info("master key", "kcv", want)
	g, gctx := errgroup.WithContext(ctx)
	for _, n := range c.st.Nodes {
		if n.Removed {
			continue
		}
		g.Go(func() error { return c.ensureMasterKey(gctx, n.ID, want) })
	}
	return g.Wait()
}

func (c *Cluster) masterKCV() (string, error) {
	b, err := os.ReadFile(filepath.Join(c.mkDir(), "master-kcv.txt"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// ensureMasterKey loads the master key into node id's token unless present;
// a present master key with another KCV is ErrMismatch.
func (c *Cluster) ensureMasterKey(ctx context.Context, id, want string) error {
	p := pathsFor(c.opts.Dir, id)
	out, err := c.runStep(ctx, p.SoftHSMConf, "mk", "status", "--config", p.Config, "--output", "json")
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	var st struct {
		Present bool   `json:"master_key_present"`
		KCV     string `json:"master_kcv"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return fmt.Errorf("%w: %s: mk status output: %w", ErrStep, id, err)
	}
	if st.Present {
		if st.KCV != want {
			return fmt.Errorf("%w: %s's token holds master key KCV %s, the cluster's is %s", ErrMismatch, id, st.KCV, want)
		}
		return nil
	}
	files, err := filepath.Glob(filepath.Join(c.mkDir(), "component-*.txt"))
	if err != nil {
		return err
	}
	args := []string{"mk", "load", "--config", p.Config, "--master-kcv", want}
	for _, f := range files {
		args = append(args, "--component", f)
	}
	if _, err := c.runStep(ctx, p.SoftHSMConf, args...); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	c.opts.Log.Info("master key loaded", "node", id, "kcv", want)
	return nil
}
