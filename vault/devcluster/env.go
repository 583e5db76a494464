package devcluster

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Env is what a CLI or grpcurl needs to reach the cluster as one identity:
// the values of PANVAULT_ADDR, PANVAULT_CACERT, PANVAULT_CERT, PANVAULT_KEY.
// A plain value, safe for concurrent reads.
type Env struct {
	// Addr lists the API addresses of the active nodes, comma-separated.
	Addr   string
	CACert string
	Cert   string
	Key    string
}

// Vars returns the variables as NAME=value pairs (for exec.Cmd.Env).
func (e Env) Vars() []string {
	return []string{
		"PANVAULT_ADDR=" + e.Addr,
		"PANVAULT_CACERT=" + e.CACert,
		"PANVAULT_CERT=" + e.Cert,
		"PANVAULT_KEY=" + e.Key,
	}
}

// Exports returns one `export` line for a POSIX shell, values quoted.
func (e Env) Exports() string {
	vs := e.Vars()
	for i, v := range vs {
		name, val, _ := strings.Cut(v, "=")
		vs[i] = name + "=" + shellQuote(val)
	}
	return "export " + strings.Join(vs, " ")
}

// shellQuote quotes s for a POSIX shell unless it needs no quoting.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:,+@=", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ClientEnv returns the client identity's environment.
func (c *Cluster) ClientEnv() Env {
	return Env{Addr: c.addrList(), CACert: c.clientFiles.CA, Cert: c.clientFiles.Cert, Key: c.clientFiles.Key}
}

// AdminEnv returns the admin identity's environment.
func (c *Cluster) AdminEnv() Env {
	return Env{Addr: c.addrList(), CACert: c.adminFiles.CA, Cert: c.adminFiles.Cert, Key: c.adminFiles.Key}
}

func (c *Cluster) addrList() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var as []string
	for _, n := range c.st.Nodes {
		if !n.Removed {
			as = append(as, n.APIAddr)
		}
	}
	return strings.Join(as, ",")
}

// ClientEnvPath and AdminEnvPath are the files the env lines are written to.
func (c *Cluster) ClientEnvPath() string { return filepath.Join(c.opts.Dir, "client.env") }

// AdminEnvPath is the admin counterpart of ClientEnvPath.
func (c *Cluster) AdminEnvPath() string { return filepath.Join(c.opts.Dir, "admin.env") }

func (c *Cluster) writeEnvFiles() error {
	for _, f := range []struct {
		path, who string
		env       Env
	}{{c.AdminEnvPath(), "admin", c.AdminEnv()}, {c.ClientEnvPath(), "client", c.ClientEnv()}} {
		body := fmt.Sprintf("# panvault dev cluster, %s identity. Use: . %s\n%s\n", f.who, shellQuote(f.path), f.env.Exports())
		if err := writeFileAtomic(f.path, []byte(body), 0o600); err != nil {
			return err
		}
	}
	return nil
}
