package devcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
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

// newNode appends a node with fresh ports and the next id.
func (s *state) newNode() (*nodeState, error) {
	s.NextID++
	n := nodeState{ID: "node" + strconv.Itoa(s.NextID)}
	if err := n.pickPorts(); err != nil {
		return nil, err
	}
	s.Nodes = append(s.Nodes, n)
	return &s.Nodes[len(s.Nodes)-1], nil
}

// pickPorts chooses two free loopback ports. A port is free when listening
// on it succeeds; it is closed again at once, so another program can take it
// before the node binds it: the caller retries on a bind failure.
func (n *nodeState) pickPorts() error {
	api, err := freePort()
	if err != nil {
		return err
	}
	raft, err := freePort()
	if err != nil {
		return err
	}
	n.APIAddr, n.RaftAddr = api, raft
	return nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("devcluster: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
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
