package vault

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/scheme"
)

// ClusterStatus describes the cluster as this node sees it. It answers
// without a leader (membership then comes from the local configuration,
// which may be behind).
func (n *Node) ClusterStatus(ctx context.Context) (*pb.StatusResponse, error) {
	st := n.store.Status()
	resp := &pb.StatusResponse{
		NodeId:            st.ID,
		Role:              nodeRole(st.Role),
		LeaderId:          st.LeaderID,
		LeaderRaftAddress: st.LeaderAddress,
		Term:              st.Term,
		CommitIndex:       st.CommitIndex,
		AppliedIndex:      st.AppliedIndex,
	}
	members, err := n.store.Members(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	for _, m := range members {
		node := &pb.Node{Id: m.ID, RaftAddress: m.Address, Suffrage: pb.Suffrage_SUFFRAGE_NONVOTER}
		if m.Voter {
			node.Suffrage = pb.Suffrage_SUFFRAGE_VOTER
		}
		switch {
		case m.ID == st.ID:
			node.Role = resp.Role
		case m.ID == st.LeaderID:
			node.Role = pb.NodeRole_NODE_ROLE_LEADER
		case st.LeaderID != "":
			node.Role = pb.NodeRole_NODE_ROLE_FOLLOWER
		}
		resp.Nodes = append(resp.Nodes, node)
	}
	return resp, nil
}

func nodeRole(s string) pb.NodeRole {
	switch s {
	case "Leader":
		return pb.NodeRole_NODE_ROLE_LEADER
	case "Follower":
		return pb.NodeRole_NODE_ROLE_FOLLOWER
	case "Candidate":
		return pb.NodeRole_NODE_ROLE_CANDIDATE
	case "Shutdown":
		return pb.NodeRole_NODE_ROLE_SHUTDOWN
	}
	return pb.NodeRole_NODE_ROLE_UNSPECIFIED
}

// checkNodeID validates a node id field: 1 to 63 characters from ASCII
// letters, digits, '-', '_' and '.'.
func checkNodeID(field, id string) error {
	if id == "" {
		return fieldError(field, scheme.RuleRequired, "is required")
	}
	if len(id) > 63 {
		return fieldError(field, scheme.RuleFormat, "is longer than 63 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fieldError(field, scheme.RuleFormat, "must be ascii letters, digits, '-', '_' and '.'")
		}
	}
	return nil
}

func checkAddress(field, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fieldError(field, scheme.RuleFormat, "must be host:port")
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fieldError(field, scheme.RuleFormat, "must be host:port with a port from 1 to 65535")
	}
	return nil
}

// Join adds node id at raft address addr as a voter. It reports false when
// the node already was a voter at that address.
func (n *Node) Join(ctx context.Context, id, addr string, nonvoter bool) (bool, error) {
	if err := checkNodeID("node_id", id); err != nil {
		return false, err
	}
	if err := checkAddress("raft_address", addr); err != nil {
		return false, err
	}
	if nonvoter {
		return false, fmt.Errorf("%w: joining as a non-voter", ErrUnsupported)
	}
	if m, ok := n.member(ctx, id); ok && m.Address == addr && m.Voter {
		return false, nil
	}
	if err := n.store.Join(ctx, id, addr); err != nil {
		return false, err
	}
	n.log.Info("node joined", "joined", id, "raft_address", addr)
	return true, nil
}

// Remove takes node id out of the configuration; false when it was not a
// member.
func (n *Node) Remove(ctx context.Context, id string) (bool, error) {
	if err := checkNodeID("node_id", id); err != nil {
		return false, err
	}
	if _, ok := n.member(ctx, id); !ok {
		return false, nil
	}
	if err := n.store.Remove(ctx, id); err != nil {
		return false, err
	}
	n.log.Info("node removed", "removed", id)
	return true, nil
}

// TransferLeadership moves leadership to target (empty: the leader picks)
// and returns the new leader's id.
func (n *Node) TransferLeadership(ctx context.Context, target string) (string, error) {
	if target != "" {
		if err := checkNodeID("target_node_id", target); err != nil {
			return "", err
		}
		m, ok := n.member(ctx, target)
		if !ok || !m.Voter {
			return "", fmt.Errorf("%w: %q is not a voter", raftstore.ErrUnknownMember, target)
		}
	}
	if err := n.store.TransferLeadership(ctx, target); err != nil {
		return "", err
	}
	id, _, err := n.store.WaitForLeader(ctx)
	if err != nil {
		return "", err
	}
	n.log.Info("leadership transferred", "leader", id)
	return id, nil
}

func (n *Node) member(ctx context.Context, id string) (raftstore.Member, bool) {
	ms, err := n.store.Members(ctx)
	if err != nil {
		return raftstore.Member{}, false
	}
	for _, m := range ms {
		if m.ID == id {
			return m, true
		}
	}
	return raftstore.Member{}, false
}
