package rawlimits

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is a raft.StreamLayer over TCP, with mutual TLS when
// serverTLS and clientTLS are set (as raftstore's transport uses), plain
// otherwise. Safe for concurrent use.
type streamLayer struct {
	net.Listener
	serverTLS, clientTLS *tls.Config
}

func newStreamLayer(serverTLS, clientTLS *tls.Config) (*streamLayer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &streamLayer{Listener: ln, serverTLS: serverTLS, clientTLS: clientTLS}
	if serverTLS != nil {
		s.Listener = tls.NewListener(ln, serverTLS)
	}
	return s, nil
}

// Dial connects to a peer. With TLS the handshake completes before Dial
// returns, so a refused certificate fails here and not on first use.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.clientTLS == nil {
		return d.Dial("tcp", string(addr))
	}
	return (&tls.Dialer{NetDialer: d, Config: s.clientTLS}).Dial("tcp", string(addr))
}
