package raftstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Protocol bytes sent by the dialer right after the TLS handshake.
const (
	protoRaft    byte = 'R'
	protoForward byte = 'F'
	protoPing    byte = 'P'
)

const handshakeTimeout = 5 * time.Second

// mux owns the node's single TCP listener. Every accepted connection must
// complete a mutual TLS 1.3 handshake and then name its protocol with one
// byte; it is handed to the Raft transport or the forwarding gRPC server
// through a subListener. Safe for concurrent use.
type mux struct {
	ln         net.Listener
	advertise  net.Addr
	serverTLS  *tls.Config
	clientTLS  *tls.Config
	verifyPeer func(*x509.Certificate) error
	logger     hclog.Logger

	raftL *subListener
	fwdL  *subListener

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup

	connMu sync.Mutex
	conns  map[net.Conn]struct{} // accepted, not yet handed over
}

func newMux(bind, advertise string, serverTLS, clientTLS *tls.Config, verifyPeer func(*x509.Certificate) error, logger hclog.Logger) (*mux, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, fmt.Errorf("raftstore: listen: %w", err)
	}
	adv := ln.Addr()
	if advertise != "" {
		a, err := net.ResolveTCPAddr("tcp", advertise)
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("%w: AdvertiseAddr: %w", ErrInvalidConfig, err)
		}
		if a.IP == nil || a.IP.IsUnspecified() {
			_ = ln.Close()
			return nil, fmt.Errorf("%w: AdvertiseAddr must name a host", ErrInvalidConfig)
		}
		adv = a
	} else if t, ok := adv.(*net.TCPAddr); ok && t.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, fmt.Errorf("%w: BindAddr is unspecified; set AdvertiseAddr", ErrInvalidConfig)
	}
	m := &mux{ln: ln, advertise: adv, serverTLS: serverTLS, clientTLS: clientTLS, verifyPeer: verifyPeer, logger: logger,
		done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	m.raftL = newSubListener(m)
	m.fwdL = newSubListener(m)
	m.wg.Add(1)
	go m.serve()
	return m, nil
}

func (m *mux) serve() {
	defer m.wg.Done()
	var backoff time.Duration
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			m.logger.Warn("accept failed", "error", err)
			select {
			case <-time.After(backoff):
			case <-m.done:
				return
			}
			continue
		}
		backoff = 0
		m.track(c, true)
		m.wg.Add(1)
		go m.handle(c)
	}
}

func (m *mux) track(c net.Conn, add bool) {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	if add {
		m.conns[c] = struct{}{}
	} else {
		delete(m.conns, c)
	}
}

func (m *mux) handle(raw net.Conn) {
	defer m.wg.Done()
	defer m.track(raw, false)
	tc := tls.Server(raw, m.serverTLS)
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		m.logger.Warn("peer TLS handshake failed", "remote", raw.RemoteAddr().String(), "error", err)
		_ = raw.Close()
		return
	}
	if err := m.checkPeer(tc); err != nil {
		m.logger.Warn("peer refused", "remote", raw.RemoteAddr().String(), "error", err)
		_ = tc.Close()
		return
	}
	var b [1]byte
	if _, err := io.ReadFull(tc, b[:]); err != nil {
		_ = tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	switch b[0] {
	case protoRaft:
		m.raftL.push(tc)
	case protoForward:
		m.fwdL.push(tc)
	case protoPing:
		_, _ = tc.Write([]byte{protoPing})
		_ = tc.Close()
	default:
		m.logger.Warn("unknown protocol byte from peer", "remote", raw.RemoteAddr().String())
		_ = tc.Close()
	}
}

// dial opens a mutual-TLS connection to addr and announces proto.
func (m *mux) dial(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: m.clientTLS}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, handshakeTimeout)
		defer cancel()
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := m.checkPeer(c.(*tls.Conn)); err != nil {
		_ = c.Close()
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// checkPeer applies Config.VerifyPeer to a completed handshake.
func (m *mux) checkPeer(c *tls.Conn) error {
	if m.verifyPeer == nil {
		return nil
	}
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return errors.New("raftstore: peer sent no certificate")
	}
	if err := m.verifyPeer(certs[0]); err != nil {
		return fmt.Errorf("raftstore: peer certificate refused: %w", err)
	}
	return nil
}

// ping proves that addr is a node that accepts this node's certificate and
// presents one from the same CA.
func (m *mux) ping(ctx context.Context, addr string) error {
	c, err := m.dial(ctx, addr, protoPing)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPeerUnreachable, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetReadDeadline(dl)
	} else {
		_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != protoPing {
		return fmt.Errorf("%w: no ping answer: %v", ErrPeerUnreachable, err)
	}
	return nil
}

func (m *mux) close() {
	m.closeOnce.Do(func() {
		close(m.done)
		_ = m.ln.Close()
		m.connMu.Lock()
		for c := range m.conns {
			_ = c.Close()
		}
		m.connMu.Unlock()
		m.raftL.Close()
		m.fwdL.Close()
	})
	m.wg.Wait()
}

// subListener is the net.Listener one protocol sees. For Raft it is also the
// raft.StreamLayer (Dial announces protoRaft).
type subListener struct {
	m      *mux
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

var _ raft.StreamLayer = (*subListener)(nil)

func newSubListener(m *mux) *subListener {
	return &subListener{m: m, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *subListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		_ = c.Close()
	case <-l.m.done:
		_ = c.Close()
	}
}

// Accept implements net.Listener.
func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; it closes only this protocol's side.
func (l *subListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener: the advertised address.
func (l *subListener) Addr() net.Addr { return l.m.advertise }

// Dial implements raft.StreamLayer.
func (l *subListener) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.m.dial(ctx, string(address), protoRaft)
}
