// Package pki holds panvault's mutual TLS: loading certificates into TLS 1.3
// configurations, naming the identity behind a client certificate, mapping
// identities to roles, and a small certificate authority for dev mode and
// tests.
//
// Why a package of its own: the server, the CLI, node-to-node Raft transport
// and every test must agree on one TLS policy, and a policy spread over call
// sites drifts. Here it is written once:
//
//   - TLS 1.3 only. Servers require a client certificate and verify it against
//     the configured CA pool (tls.RequireAndVerifyClientCert); clients verify the
//     server against the same CA, and the server name comes from the address
//     dialled (dev certificates carry 127.0.0.1, ::1 and localhost).
//   - A caller's identity is taken from the leaf certificate of the verified
//     chain only: its first URI SAN (for example
//     spiffe://panvault.dev/client/payments), else its subject common name.
//     Intermediate and root certificates never name the caller. Go's TLS does
//     not check revocation, so removing an identity from the Authorizer is how
//     access is withdrawn before a certificate expires.
//   - Roles are not read from certificates: an Authorizer maps identities to
//     roles (client, admin, node) from explicit configuration, and an identity
//     it does not know is denied. A certificate from the right CA is therefore
//     necessary but never sufficient.
//
// Errors name the file that failed and wrap one of this package's sentinel
// errors; they never contain key bytes or PEM contents.
//
// The CA (NewCA, in memory) and DevCA (NewDevCA, a directory of PEM files) issue
// ECDSA P-256 certificates for development and tests; production deployments
// bring certificates from their own CA and use only LoadServerTLS,
// LoadClientTLS and the identity and authorization functions. Subpackage
// pkitest wraps the in-memory CA for tests.
package pki
