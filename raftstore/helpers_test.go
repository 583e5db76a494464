package raftstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// testCA is a throwaway certificate authority for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// nodeTLS issues a node certificate (server and client usage, 127.0.0.1)
// and returns the server and client configs a Store needs.
func (ca *testCA) nodeTLS(t testing.TB, name string) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	pair := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	server = &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientCAs:    ca.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      ca.pool,
		MinVersion:   tls.VersionTLS13,
	}
	return server, client
}

func testLogger() hclog.Logger {
	level := hclog.Error
	if v := os.Getenv("RAFTSTORE_TEST_LOG"); v != "" {
		level = hclog.LevelFromString(v)
	}
	return hclog.New(&hclog.LoggerOptions{Name: "raftstore-test", Level: level, Output: os.Stderr})
}

// fatalRecorder collects fatal-hook calls; read it from the test goroutine.
type fatalRecorder struct {
	mu   sync.Mutex
	errs []error
	ch   chan error
}

func newFatalRecorder() *fatalRecorder { return &fatalRecorder{ch: make(chan error, 16)} }

func (f *fatalRecorder) hook(err error) {
	f.mu.Lock()
	f.errs = append(f.errs, err)
	f.mu.Unlock()
	select {
	case f.ch <- err:
	default:
	}
}

func (f *fatalRecorder) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.errs)
}

// testNode is one Store of a test cluster plus what is needed to restart it.
type testNode struct {
	id     string
	dir    string
	cfg    Config
	s      *Store
	fatals *fatalRecorder
}

type clusterOpts struct {
	tweak func(*Config)
}

func fastConfig(t testing.TB, ca *testCA, id, dir, bind string, fatals *fatalRecorder) Config {
	server, client := ca.nodeTLS(t, id)
	return Config{
		NodeID:             id,
		BindAddr:           bind,
		DataDir:            dir,
		ServerTLS:          server,
		ClientTLS:          client,
		Logger:             testLogger(),
		Fatal:              fatals.hook,
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		ApplyTimeout:       5 * time.Second,
		OpenTimeout:        time.Second,
		InitialMmapSize:    64 << 20,
	}
}

func startNode(t testing.TB, ca *testCA, id string, o clusterOpts) *testNode {
	t.Helper()
	n := &testNode{id: id, dir: t.TempDir(), fatals: newFatalRecorder()}
	n.cfg = fastConfig(t, ca, id, n.dir, "127.0.0.1:0", n.fatals)
	if o.tweak != nil {
		o.tweak(&n.cfg)
	}
	s, err := Open(n.cfg)
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	n.s = s
	// Restarts bind the same address again.
	n.cfg.BindAddr = s.Addr()
	t.Cleanup(func() { _ = n.s.Shutdown() })
	return n
}

// restart shuts the node down and opens it again on the same directory and
// address.
func (n *testNode) restart(t testing.TB) {
	t.Helper()
	if err := n.s.Shutdown(); err != nil {
		t.Fatalf("shutdown %s: %v", n.id, err)
	}
	var err error
	for range 50 { // the port may linger briefly
		var s *Store
		if s, err = Open(n.cfg); err == nil {
			n.s = s
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("reopen %s: %v", n.id, err)
}

type testCluster struct {
	ca    *testCA
	nodes []*testNode
	o     clusterOpts
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newCluster bootstraps node n1 and joins the others: n2 through the
// leader's Join, the rest through RequestJoin from the new node.
func newCluster(t testing.TB, size int, o clusterOpts) *testCluster {
	t.Helper()
	c := &testCluster{ca: newTestCA(t, "cluster-ca"), o: o}
	for i := range size {
		c.nodes = append(c.nodes, startNode(t, c.ca, fmt.Sprintf("n%d", i+1), o))
	}
	ctx := ctxT(t, 20*time.Second)
	first := c.nodes[0].s
	if err := first.Bootstrap(ctx); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if _, _, err := first.WaitForLeader(ctx); err != nil {
		t.Fatalf("wait leader: %v", err)
	}
	for i, n := range c.nodes[1:] {
		var err error
		if i == 0 {
			err = first.Join(ctx, n.id, n.s.Addr())
		} else {
			err = n.s.RequestJoin(ctx, first.Addr())
		}
		if err != nil {
			t.Fatalf("join %s: %v", n.id, err)
		}
	}
	for _, n := range c.nodes {
		if _, _, err := n.s.WaitForLeader(ctx); err != nil {
			t.Fatalf("%s wait leader: %v", n.id, err)
		}
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if k := n.fatals.count(); k != 0 {
				t.Errorf("node %s: fatal hook called %d times", n.id, k)
			}
		}
	})
	return c
}

func (c *testCluster) leader(t testing.TB) *testNode {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			if !n.s.isClosed() && n.s.IsLeader() {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader within 10s")
	return nil
}

func (c *testCluster) followers(t testing.TB) []*testNode {
	l := c.leader(t)
	var out []*testNode
	for _, n := range c.nodes {
		if n != l && !n.s.isClosed() {
			out = append(out, n)
		}
	}
	return out
}

// waitConverged waits until every live node applied at least the leader's
// applied index.
func (c *testCluster) waitConverged(t testing.TB) {
	t.Helper()
	target := c.leader(t).s.AppliedIndex()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range c.nodes {
		if n.s.isClosed() {
			continue
		}
		for n.s.AppliedIndex() < target {
			if time.Now().After(deadline) {
				t.Fatalf("node %s applied %d, leader %d", n.id, n.s.AppliedIndex(), target)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func key(i int) []byte { return []byte(fmt.Sprintf("k%06d", i)) }
func val(i int) []byte { return []byte(fmt.Sprintf("v%06d", i)) }
