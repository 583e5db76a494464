package pki

import (
	"errors"
	"testing"
)

// A "/*" entry gives its role to every identity under the prefix, and only
// to those: the Raft port relies on it to tell node certificates from client
// and admin certificates of the same CA.
func TestWildcardNodesAndVerifyNodeCert(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAuthorizer(AuthzConfig{
		Admins:  []string{AdminIdentity("ops")},
		Clients: []string{ClientIdentity("payments")},
		Nodes:   []string{DevNodePattern},
	})
	if err != nil {
		t.Fatal(err)
	}
	node, err := ca.IssueNode("node7")
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.IssueClient("payments")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := ca.IssueAdmin("ops")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.VerifyNodeCert(node.Cert); err != nil {
		t.Fatalf("node certificate refused: %v", err)
	}
	for name, leaf := range map[string]*Leaf{"client": client, "admin": admin} {
		if err := a.VerifyNodeCert(leaf.Cert); !errors.Is(err, ErrPermissionDenied) {
			t.Fatalf("%s certificate on the node port: err = %v, want ErrPermissionDenied", name, err)
		}
	}
	if got := a.Roles(NodeIdentity("node7")); got != RoleNode {
		t.Fatalf("Roles(node7) = %s, want node", got)
	}
	// The prefix alone, or a sibling path, does not match.
	for _, id := range []string{"spiffe://" + DevTrustDomain + "/node/", "spiffe://" + DevTrustDomain + "/nodes/x", ClientIdentity("payments")} {
		if a.Roles(id)&RoleNode != 0 {
			t.Fatalf("Roles(%q) includes node", id)
		}
	}
	if _, err := a.Authorize(NodeIdentity("node9"), RoleNode); err != nil {
		t.Fatalf("Authorize(node9, node): %v", err)
	}
	if _, err := a.Authorize(NodeIdentity("node9"), RoleClient); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("Authorize(node9, client): %v, want ErrPermissionDenied", err)
	}
}

func TestWildcardMustBeATrailingPathSegment(t *testing.T) {
	for _, bad := range []string{"*", "spiffe://x/node*", "spiffe://x/*/node", "node/*", "spiffe://x/**"} {
		if _, err := NewAuthorizer(AuthzConfig{Nodes: []string{bad}}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewAuthorizer(nodes=[%q]) = %v, want ErrInvalidConfig", bad, err)
		}
	}
}
