package pki

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Role is a set of roles, as bit flags: an identity may hold several (an
// operator may be both admin and client), and an action may allow several. The
// zero Role is the empty set. Roles are plain values, safe for concurrent use.
type Role uint8

// The roles. Their numbers are not persisted: only names appear in
// configuration.
const (
	// RoleClient is a payment service: tokenize, detokenize, sign, verify
	// (the vault's policies refine what each client may do).
	RoleClient Role = 1 << iota
	// RoleAdmin administers schemes, keys and cluster membership.
	RoleAdmin
	// RoleNode is another panvault node: Raft traffic and forwarded requests.
	RoleNode
)

var roleNames = [...]struct {
	r    Role
	name string
}{{RoleClient, "client"}, {RoleAdmin, "admin"}, {RoleNode, "node"}}

// String returns the role names joined by "|" ("admin|client"), or "none".
func (r Role) String() string {
	var parts []string
	for _, rn := range roleNames {
		if r&rn.r != 0 {
			parts = append(parts, rn.name)
		}
	}
	if rest := r &^ (RoleClient | RoleAdmin | RoleNode); rest != 0 {
		parts = append(parts, fmt.Sprintf("Role(%#x)", uint8(rest)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// AuthzConfig lists which identities hold which role. Identities are compared
// as exact strings with what IdentityFromCert returns (a URI SAN or a common
// name). An identity may appear in several lists and then holds every role
// they grant; an identity in no list is denied everything.
type AuthzConfig struct {
	// Admins may administer schemes, keys and the cluster.
	Admins []string
	// Clients are payment services.
	Clients []string
	// Nodes are the cluster's own nodes.
	Nodes []string
}

// Authorizer maps identities to roles and denies unknown identities. It is
// immutable after NewAuthorizer and safe for concurrent use; to change the
// configuration, build a new Authorizer and swap it in (for example through an
// atomic.Pointer).
type Authorizer struct {
	roles map[string]Role
	// prefixes holds list entries ending in "/*": every identity that starts
	// with the part before "*" holds the entry's role. Operators use them for
	// node identities, so that adding a node does not mean editing the
	// configuration of every other node.
	prefixes []prefixRole
}

type prefixRole struct {
	prefix string
	role   Role
}

// wildcardSuffix marks a prefix entry: "spiffe://example.org/node/*".
const wildcardSuffix = "/*"

// NewAuthorizer checks cfg and builds an Authorizer from it. An identity must
// be non-empty, valid UTF-8 without surrounding spaces or control characters,
// and appear at most once per list. Errors wrap ErrInvalidConfig and name the
// list and position ("admins[2]").
func NewAuthorizer(cfg AuthzConfig) (*Authorizer, error) {
	a := &Authorizer{roles: make(map[string]Role)}
	lists := []struct {
		key  string
		ids  []string
		role Role
	}{
		{"admins", cfg.Admins, RoleAdmin},
		{"clients", cfg.Clients, RoleClient},
		{"nodes", cfg.Nodes, RoleNode},
	}
	for _, l := range lists {
		for i, id := range l.ids {
			if err := checkIdentity(id); err != nil {
				return nil, fmt.Errorf("pki: %s[%d]: %w: %w", l.key, i, ErrInvalidConfig, err)
			}
			if strings.Contains(id, "*") {
				prefix, ok := strings.CutSuffix(id, "*")
				if !ok || !strings.HasSuffix(id, wildcardSuffix) || strings.Contains(prefix, "*") || !strings.Contains(prefix, ":") {
					return nil, fmt.Errorf("pki: %s[%d]: %w: a wildcard must be one trailing \"/*\" after a scheme and path, as in \"spiffe://example.org/node/*\"", l.key, i, ErrInvalidConfig)
				}
				a.prefixes = append(a.prefixes, prefixRole{prefix: prefix, role: l.role})
				continue
			}
			if a.roles[id]&l.role != 0 {
				return nil, fmt.Errorf("pki: %s[%d]: %w: duplicate identity %q", l.key, i, ErrInvalidConfig, id)
			}
			a.roles[id] |= l.role
		}
	}
	return a, nil
}

// checkIdentity rejects identities that no certificate could match, or that
// would mislead someone reading the configuration.
func checkIdentity(id string) error {
	switch {
	case id == "":
		return errors.New("empty identity")
	case !utf8.ValidString(id):
		return errors.New("identity is not valid utf-8")
	case strings.TrimSpace(id) != id:
		return fmt.Errorf("identity %q has surrounding spaces", id)
	case strings.ContainsFunc(id, unicode.IsControl):
		return fmt.Errorf("identity %q has control characters", id)
	}
	return nil
}

// Roles returns the roles identity holds; the empty Role for an unknown one.
func (a *Authorizer) Roles(identity string) Role {
	held := a.roles[identity]
	for _, p := range a.prefixes {
		if len(identity) > len(p.prefix) && strings.HasPrefix(identity, p.prefix) {
			held |= p.role
		}
	}
	return held
}

// Authorize checks that identity holds at least one of the roles in allowed
// and returns every role it holds. An unknown identity gets ErrUnknownIdentity,
// a known one without an allowed role ErrPermissionDenied; both satisfy
// errors.Is(err, ErrPermissionDenied).
func (a *Authorizer) Authorize(identity string, allowed Role) (Role, error) {
	held := a.Roles(identity)
	if held == 0 {
		return 0, fmt.Errorf("pki: identity %q: %w", identity, ErrUnknownIdentity)
	}
	if held&allowed == 0 {
		return held, fmt.Errorf("pki: identity %q holds %s, needs %s: %w", identity, held, allowed, ErrPermissionDenied)
	}
	return held, nil
}

// AuthorizePeer authorizes the caller of a gRPC call: PeerIdentity, then
// Authorize. It returns the caller's identity and roles. A call without a
// verified client certificate gets ErrUnauthenticated, which a gRPC edge maps
// to codes.Unauthenticated (and ErrPermissionDenied to
// codes.PermissionDenied).
func (a *Authorizer) AuthorizePeer(ctx context.Context, allowed Role) (string, Role, error) {
	id, err := PeerIdentity(ctx)
	if err != nil {
		return "", 0, err
	}
	held, err := a.Authorize(id, allowed)
	return id, held, err
}

// VerifyNodeCert accepts only certificates whose identity holds RoleNode. It
// is meant for raftstore.Config.VerifyPeer: the Raft port accepts any
// certificate of the cluster CA at the TLS level, and the same CA also issues
// client and admin certificates, which must not be able to speak Raft or
// propose writes.
func (a *Authorizer) VerifyNodeCert(leaf *x509.Certificate) error {
	id, err := IdentityFromCert(leaf)
	if err != nil {
		return err
	}
	_, err = a.Authorize(id, RoleNode)
	return err
}
