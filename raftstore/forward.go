package raftstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/panvault/panvault/raftstore/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// The forwarding service runs over connections the mux already secured with
// mutual TLS, so gRPC itself uses no transport credentials.

const (
	maxForwardResponse = 32 << 20
	forwardKeepalive   = 30 * time.Second
)

// statusTable maps sentinels to gRPC codes. The status message starts with
// the sentinel's text, which is how the calling node recovers the sentinel.
var statusTable = []struct {
	err  error
	code codes.Code
}{
	{ErrNotLeader, codes.FailedPrecondition},
	{ErrNoLeader, codes.Unavailable},
	{ErrUnknownOutcome, codes.Aborted},
	{ErrNotApplied, codes.ResourceExhausted},
	{ErrClosed, codes.Unavailable},
	{ErrInvalidCommand, codes.InvalidArgument},
	{ErrMemberConflict, codes.AlreadyExists},
	{ErrUnknownMember, codes.NotFound},
	{ErrPeerUnreachable, codes.FailedPrecondition},
	{ErrStopped, codes.Internal},
}

func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		err = fmt.Errorf("%w: %w", ErrNotLeader, err)
	}
	for _, e := range statusTable {
		if errors.Is(err, e.err) {
			return status.Error(e.code, e.err.Error()+": "+err.Error())
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// fromStatus recovers the sentinel from a forwarding error. ok is false for
// transport failures (no sentinel), whose outcome the caller must classify.
func fromStatus(err error) (error, bool) {
	st, isStatus := status.FromError(err)
	if !isStatus {
		return err, false
	}
	for _, e := range statusTable {
		if st.Code() == e.code && strings.HasPrefix(st.Message(), e.err.Error()) {
			return fmt.Errorf("%w (from leader: %s)", e.err, strings.TrimPrefix(st.Message(), e.err.Error()+": ")), true
		}
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %s", context.DeadlineExceeded, st.Message()), false
	case codes.Canceled:
		return fmt.Errorf("%w: %s", context.Canceled, st.Message()), false
	}
	return err, false
}

// forwardServer implements raftpb.ForwardServer on top of a Store.
type forwardServer struct {
	raftpb.UnimplementedForwardServer
	s *Store
}

func (f *forwardServer) Propose(ctx context.Context, req *raftpb.ProposeRequest) (*raftpb.ProposeResponse, error) {
	cmds := req.GetCommands()
	if len(cmds) == 0 || len(cmds) > f.s.cfg.MaxBatchCommands {
		return nil, status.Errorf(codes.InvalidArgument, "%s: %d commands in one request", ErrInvalidCommand, len(cmds))
	}
	out := &raftpb.ProposeResponse{Outcomes: make([]*raftpb.Outcome, len(cmds))}
	if !f.s.IsLeader() {
		for i := range out.Outcomes {
			out.Outcomes[i] = &raftpb.Outcome{Error: raftpb.ProposeError_PROPOSE_ERROR_NOT_LEADER}
		}
		return out, nil
	}
	results, errs := f.s.submitMany(ctx, cmds, true)
	for i := range cmds {
		out.Outcomes[i] = errToOutcome(results[i], errs[i])
	}
	return out, nil
}

func errToOutcome(r *raftpb.Result, err error) *raftpb.Outcome {
	switch {
	case err == nil:
		return &raftpb.Outcome{Result: r}
	case errors.Is(err, ErrUnknownOutcome):
		return &raftpb.Outcome{Error: raftpb.ProposeError_PROPOSE_ERROR_UNKNOWN_OUTCOME, Detail: err.Error()}
	case errors.Is(err, ErrNotLeader), errors.Is(err, ErrNoLeader):
		return &raftpb.Outcome{Error: raftpb.ProposeError_PROPOSE_ERROR_NOT_LEADER, Detail: err.Error()}
	case errors.Is(err, ErrInvalidCommand):
		return &raftpb.Outcome{Error: raftpb.ProposeError_PROPOSE_ERROR_INVALID, Detail: err.Error()}
	default:
		// Queue full, closed, or the caller's deadline before the command
		// was taken: none of these entered the log.
		return &raftpb.Outcome{Error: raftpb.ProposeError_PROPOSE_ERROR_NOT_APPLIED, Detail: err.Error()}
	}
}

func (f *forwardServer) ReadIndex(ctx context.Context, _ *raftpb.ReadIndexRequest) (*raftpb.ReadIndexResponse, error) {
	if !f.s.IsLeader() {
		return nil, toStatus(ErrNotLeader)
	}
	idx, err := f.s.leaderRead.do(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &raftpb.ReadIndexResponse{Index: idx}, nil
}

func (f *forwardServer) Join(ctx context.Context, req *raftpb.JoinRequest) (*raftpb.JoinResponse, error) {
	var err error
	if req.GetForwarded() {
		err = f.s.joinLocal(ctx, req.GetId(), req.GetAddress())
	} else {
		err = f.s.Join(ctx, req.GetId(), req.GetAddress())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &raftpb.JoinResponse{}, nil
}

func (f *forwardServer) Remove(ctx context.Context, req *raftpb.RemoveRequest) (*raftpb.RemoveResponse, error) {
	var err error
	if req.GetForwarded() {
		err = f.s.removeLocal(ctx, req.GetId())
	} else {
		err = f.s.Remove(ctx, req.GetId())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &raftpb.RemoveResponse{}, nil
}

func (f *forwardServer) TransferLeadership(ctx context.Context, req *raftpb.TransferRequest) (*raftpb.TransferResponse, error) {
	var err error
	if req.GetForwarded() {
		err = f.s.transferLocal(ctx, req.GetTargetId())
	} else {
		err = f.s.TransferLeadership(ctx, req.GetTargetId())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &raftpb.TransferResponse{}, nil
}

func newForwardGRPCServer(s *Store) *grpc.Server {
	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(s.cfg.MaxBatchBytes+(1<<20)),
		grpc.MaxSendMsgSize(maxForwardResponse),
		grpc.MaxConcurrentStreams(256),
		grpc.ConnectionTimeout(handshakeTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: forwardKeepalive / 2, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * forwardKeepalive, Timeout: 10 * time.Second}),
	)
	raftpb.RegisterForwardServer(srv, &forwardServer{s: s})
	return srv
}

// peerClients caches one gRPC client connection per peer address. Safe for
// concurrent use.
type peerClients struct {
	m        *mux
	maxSend  int
	mu       sync.Mutex
	conns    map[string]*grpc.ClientConn
	isClosed bool
}

func newPeerClients(m *mux, maxSend int) *peerClients {
	return &peerClients{m: m, maxSend: maxSend, conns: make(map[string]*grpc.ClientConn)}
}

func (p *peerClients) get(addr string) (raftpb.ForwardClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isClosed {
		return nil, ErrClosed
	}
	if cc, ok := p.conns[addr]; ok {
		return raftpb.NewForwardClient(cc), nil
	}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return p.m.dial(ctx, a, protoForward)
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: forwardKeepalive, Timeout: 10 * time.Second}),
		// Reconnect quickly: a restarted leader keeps its address.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxForwardResponse), grpc.MaxCallSendMsgSize(p.maxSend)),
	)
	if err != nil {
		return nil, fmt.Errorf("raftstore: forward client: %w", err)
	}
	p.conns[addr] = cc
	return raftpb.NewForwardClient(cc), nil
}

// ready reports whether the connection to addr is established, waiting at
// most wait for it. A proposal is forwarded only over a ready connection,
// so that "leader unreachable" (never sent, safe to retry) is not confused
// with "connection lost after sending" (outcome unknown).
func (p *peerClients) ready(ctx context.Context, addr string, wait time.Duration) bool {
	p.mu.Lock()
	cc := p.conns[addr]
	p.mu.Unlock()
	if cc == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		st := cc.GetState()
		switch st {
		case connectivity.Ready:
			return true
		case connectivity.Idle:
			cc.Connect()
		case connectivity.Shutdown:
			return false
		}
		if !cc.WaitForStateChange(ctx, st) {
			return false
		}
	}
}

func (p *peerClients) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isClosed = true
	for a, cc := range p.conns {
		_ = cc.Close()
		delete(p.conns, a)
	}
}
