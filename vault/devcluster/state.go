package devcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	stateFileName = "devcluster.json"
	stateVersion  = 1
)

// state is what devcluster.json records: the nodes ever created, in order.
// Node ids are never reused (NextID only grows), as Raft requires.
type state struct {
	Version int         `json:"version"`
	NextID  int         `json:"next_id"`
	Nodes   []nodeState `json:"nodes"`
}

type nodeState struct {
	ID       string `json:"id"`
	APIAddr  string `json:"api_addr"`
	RaftAddr string `json:"raft_addr"`
	// Bootstrap marks the node that formed the cluster.
	Bootstrap bool `json:"bootstrap,omitempty"`
	// Join lists the Raft addresses the node asks to join through.
	Join []string `json:"join,omitempty"`
	// Started is set once the node has been ready; until then its ports may
	// still be changed if they turn out to be taken.
	Started bool `json:"started,omitempty"`
	// Removed marks a node taken out of the Raft configuration.
	Removed bool `json:"removed,omitempty"`
}

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMismatch, stateFileName, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("%w: %s: version %d, want %d", ErrMismatch, stateFileName, s.Version, stateVersion)
	}
	return &s, nil
}

func (s *state) write(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, stateFileName), append(b, '\n'), 0o600)
}

// newNode appends a node with fresh ports and the next id: none of the
// state's nodes' addresses nor of also (the cluster's other listeners).
func (s *state) newNode(also map[string]bool) (*nodeState, error) {
	s.NextID++
	n := nodeState{ID: "node" + strconv.Itoa(s.NextID)}
	in := maps.Clone(also)
	if in == nil {
		in = map[string]bool{}
	}
	for _, o := range s.Nodes {
		in[o.APIAddr], in[o.RaftAddr] = true, true
	}
	if err := n.pickPorts(in); err != nil {
		return nil, err
	}
	s.Nodes = append(s.Nodes, n)
	return &s.Nodes[len(s.Nodes)-1], nil
}

// pickPorts chooses two free loopback ports other than the addresses in
// inUse. A port is free when listening on it succeeds; it is closed again at
// once, so another program can take it before the node binds it: the caller
// retries on a bind failure.
func (n *nodeState) pickPorts(inUse map[string]bool) error { // adds the API address to inUse
	api, err := freePort(inUse)
	if err != nil {
		return err
	}
	inUse[api] = true
	raft, err := freePort(inUse)
	if err != nil {
		return err
	}
	n.APIAddr, n.RaftAddr = api, raft
	return nil
}

// freePort returns a loopback address with a port that was free a moment
// ago. It picks below the kernel's ephemeral range: a port the kernel hands
// out itself (to "127.0.0.1:0" or to any outgoing connection, and a test
// run makes thousands) can be taken by another process between this probe
// and the node's bind, one chosen outside that range only by a program that
// names it. It never returns an address of inUse (addresses this cluster
// has handed out and whose nodes may be down right now).
func freePort(inUse map[string]bool) (string, error) {
	lo, hi := explicitPortRange()
	for try := 0; hi > lo && try < 64; try++ {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
		if inUse[addr] {
			continue
		}
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("devcluster: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// explicitPortRange is the range freePort picks from: the 10,000 ports
// below the ephemeral range (Linux: ip_local_port_range, 32768 unless
// configured; elsewhere 32768 too, below the IANA range 49152-65535 that
// BSDs and macOS use), never below 10000.
func explicitPortRange() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 0 {
				hi = v
			}
		}
	}
	lo = max(hi-10000, 10000)
	return lo, hi
}

// writeFileAtomic writes b to path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
