package raftstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestTransferLeadershipAndRemove(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	ctx := ctxT(t, 60*time.Second)
	old := c.leader(t)
	target := c.followers(t)[1]

	// hashicorp/raft#696: a transfer can stall; the call must still return
	// within its context.
	tctx := ctxT(t, 10*time.Second)
	if err := c.followers(t)[0].s.TransferLeadership(tctx, target.id); err != nil {
		t.Fatalf("transfer (forwarded): %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !target.s.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatalf("leadership did not move to %s (leader %v)", target.id, c.leader(t).id)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if old.s.IsLeader() {
		t.Fatal("old leader still leads")
	}
	// Writes and linearizable reads work under the new leader, on the old.
	if _, err := old.s.Propose(ctx, Put("m", []byte("k"), []byte("v"))); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := old.s.Get(ctx, "m", []byte("k"), Linearizable); err != nil || !ok {
		t.Fatalf("read after transfer: %v %v", ok, err)
	}
	// Transfer with no target picks a follower.
	if err := target.s.TransferLeadership(tctx, ""); err != nil {
		t.Fatalf("transfer to any: %v", err)
	}
	if err := c.leader(t).s.TransferLeadership(tctx, "nobody"); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("transfer to unknown id: %v", err)
	}

	// Remove a follower through another follower; removing it again is a
	// no-op.
	leader := c.leader(t)
	fs := c.followers(t)
	victim, via := fs[0], fs[1]
	if err := via.s.Remove(ctx, victim.id); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if err := leader.s.Remove(ctx, victim.id); err != nil {
		t.Fatalf("remove again: %v", err)
	}
	members, err := leader.s.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 2 {
		t.Fatalf("members after remove: %+v", members)
	}
	for _, m := range members {
		if m.ID == victim.id {
			t.Fatal("removed member still listed")
		}
	}
	// Two voters still commit.
	if _, err := via.s.Propose(ctx, Put("m", []byte("k2"), []byte("v2"))); err != nil {
		t.Fatalf("propose after remove: %v", err)
	}
}

func TestForeignCAPeerRejected(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	ctx := ctxT(t, 30*time.Second)
	leader := c.leader(t)
	foreignCA := newTestCA(t, "foreign-ca")
	intruder := startNode(t, foreignCA, "evil", clusterOpts{})

	// The intruder cannot join through any member.
	jctx := ctxT(t, 5*time.Second)
	if err := intruder.s.RequestJoin(jctx, c.followers(t)[0].s.Addr()); err == nil {
		t.Fatal("node with a foreign certificate joined")
	}
	// Nor can a member add it: the leader's mTLS probe fails first.
	if err := leader.s.Join(jctx, "evil", intruder.s.Addr()); !errors.Is(err, ErrPeerUnreachable) {
		t.Fatalf("adding a foreign node: %v", err)
	}
	members, err := leader.s.Members(ctx)
	if err != nil || len(members) != 3 {
		t.Fatalf("members changed: %+v %v", members, err)
	}

	// At the socket level: a client certificate of another CA is refused
	// (in TLS 1.3 the server's verdict arrives with the first read).
	_, foreignClient := foreignCA.nodeTLS(t, "evil-client")
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", leader.s.Addr(), foreignClient)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = conn.Write([]byte{protoPing})
		var b [1]byte
		_, err = io.ReadFull(conn, b[:])
		conn.Close()
	}
	if err == nil {
		t.Fatal("foreign client certificate accepted")
	}
	// A client without any certificate is refused too.
	noCert := &tls.Config{RootCAs: c.ca.pool, MinVersion: tls.VersionTLS13}
	conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", leader.s.Addr(), noCert)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = conn.Write([]byte{protoPing})
		var b [1]byte
		_, err = io.ReadFull(conn, b[:])
		conn.Close()
	}
	if err == nil {
		t.Fatal("client without certificate accepted")
	}
	// A member's own certificate works (the check above can fail).
	_, okClient := c.ca.nodeTLS(t, "ok-client")
	conn, err = tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", leader.s.Addr(), okClient)
	if err != nil {
		t.Fatalf("member certificate refused: %v", err)
	}
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = conn.Write([]byte{protoPing})
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil || b[0] != protoPing {
		t.Fatalf("ping with member certificate: %v", err)
	}
	conn.Close()
}

func TestOpenRejectsWeakTLSConfig(t *testing.T) {
	ca := newTestCA(t, "ca")
	server, client := ca.nodeTLS(t, "n")
	base := Config{NodeID: "n", BindAddr: "127.0.0.1:0", DataDir: t.TempDir(), ServerTLS: server, ClientTLS: client}
	noClientAuth := base
	noClientAuth.ServerTLS = server.Clone()
	noClientAuth.ServerTLS.ClientAuth = tls.VerifyClientCertIfGiven
	insecure := base
	insecure.ClientTLS = client.Clone()
	insecure.ClientTLS.InsecureSkipVerify = true
	noCert := base
	noCert.ClientTLS = client.Clone()
	noCert.ClientTLS.Certificates = nil
	for name, cfg := range map[string]Config{"no client auth": noClientAuth, "insecure client": insecure, "no client cert": noCert} {
		if s, err := Open(cfg); !errors.Is(err, ErrInvalidConfig) {
			if s != nil {
				_ = s.Shutdown()
			}
			t.Errorf("%s: got %v, want ErrInvalidConfig", name, err)
		}
	}
}

// VerifyPeer narrows the accepted peers below "signed by the CA".
func TestVerifyPeerRefusesNonNodeCertificates(t *testing.T) {
	ca := newTestCA(t, "ca")
	verify := func(leaf *x509.Certificate) error {
		if !strings.HasPrefix(leaf.Subject.CommonName, "node-") {
			return errors.New("not a cluster node")
		}
		return nil
	}
	a := startNode(t, ca, "node-a", clusterOpts{tweak: func(c *Config) { c.VerifyPeer = verify }})
	b := startNode(t, ca, "node-b", clusterOpts{tweak: func(c *Config) { c.VerifyPeer = verify }})
	ctx := ctxT(t, 20*time.Second)
	if err := a.s.mux.ping(ctx, b.s.Addr()); err != nil {
		t.Fatalf("node certificate refused: %v", err)
	}
	_, apiClient := ca.nodeTLS(t, "api-client")
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", a.s.Addr(), apiClient)
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = conn.Write([]byte{protoPing})
		var buf [1]byte
		_, err = io.ReadFull(conn, buf[:])
		conn.Close()
	}
	if err == nil {
		t.Fatal("same-CA certificate of a non-node was accepted")
	}
}
