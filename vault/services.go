package vault

import (
	"context"
	"fmt"
	"strconv"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/pki"
	"github.com/panvault/panvault/vault/scheme"
)

// services holds what the gRPC service adapters share. The adapters only
// translate between messages and Node methods; errors go back raw and are
// mapped once by the edge interceptor (status.go).
type services struct {
	n *Node
}

type tokenService struct {
	pb.UnimplementedTokenServiceServer
	*services
}

type signingService struct {
	pb.UnimplementedSigningServiceServer
	*services
}

type adminService struct {
	pb.UnimplementedAdminServiceServer
	*services
}

type clusterService struct {
	pb.UnimplementedClusterServiceServer
	*services
}

var (
	_ pb.TokenServiceServer   = (*tokenService)(nil)
	_ pb.SigningServiceServer = (*signingService)(nil)
	_ pb.AdminServiceServer   = (*adminService)(nil)
	_ pb.ClusterServiceServer = (*clusterService)(nil)
)

// maskToken returns a token (or anything sent as one) in a form fit for logs:
// a 12-19 digit string masked as a PAN of those digits would be
// (card.MaskDigits), nothing but the length of anything else.
func maskToken(t string) string {
	if len(t) > card.MaxLength {
		return "[len " + strconv.Itoa(len(t)) + "]"
	}
	return card.MaskDigits(t)
}

// logName returns a scheme or key name from a request for a log line: the
// name if it is well-formed, else only its length (a confused client may
// send a PAN in any field), and a valid name with its PAN-like digit runs
// masked (card.MaskPANLikeRuns: "dek-202*****0001").
func logName(name string) string {
	if checkName("", name) != nil {
		return "[invalid, len " + strconv.Itoa(len(name)) + "]"
	}
	return card.MaskPANLikeRuns(name)
}

// batchSize checks the item count of a batch.
func batchSize(n int) error {
	if n == 0 {
		return fieldError("items", scheme.RuleRequired, "needs at least one item")
	}
	if n > MaxBatchItems {
		return fmt.Errorf("%w: %w", ErrOversizedBatch, &card.RuleError{Field: "items", Rule: "max_items",
			Description: fmt.Sprintf("oversized batch: %d items, at most %d", n, MaxBatchItems), Err: ErrOversizedBatch})
	}
	return nil
}

// tokItemFor validates one PAN and request id under e.
func (s *services) tokItemFor(ctx context.Context, e *schemeEntry, panStr, requestID string) (*tokItem, error) {
	pan, err := e.s.ParsePAN(panStr, "pan")
	if err != nil {
		return nil, err
	}
	if err := checkRequestID("request_id", requestID); err != nil {
		return nil, err
	}
	it := &tokItem{pan: pan}
	if requestID != "" {
		it.idem = idemKey(callerFrom(ctx).identity, methodTokenize, e.name(), requestID)
	}
	return it, nil
}

func (s *tokenService) Tokenize(ctx context.Context, req *pb.TokenizeRequest) (*pb.TokenizeResponse, error) {
	ri := infoFrom(ctx)
	ri.scheme = logName(req.GetScheme())
	e, err := s.n.schemes.get(ctx, "scheme", req.GetScheme())
	if err != nil {
		return nil, err
	}
	it, err := s.tokItemFor(ctx, e, req.GetPan(), req.GetRequestId())
	if err != nil {
		return nil, err
	}
	ri.masked = it.pan.Masked()
	r := s.n.tokenize(ctx, e, []*tokItem{it})[0]
	return r.resp, r.err
}

func (s *tokenService) TokenizeBatch(ctx context.Context, req *pb.TokenizeBatchRequest) (*pb.TokenizeBatchResponse, error) {
	ri := infoFrom(ctx)
	ri.scheme, ri.items = logName(req.GetScheme()), len(req.GetItems())
	if err := batchSize(len(req.GetItems())); err != nil {
		return nil, err
	}
	e, err := s.n.schemes.get(ctx, "scheme", req.GetScheme())
	if err != nil {
		return nil, err
	}
	resp := &pb.TokenizeBatchResponse{Results: make([]*pb.TokenizeBatchResult, len(req.GetItems()))}
	var items []*tokItem
	var where []int
	seen := make(map[string]int)
	for i, x := range req.GetItems() {
		it, err := s.tokItemFor(ctx, e, x.GetPan(), x.GetRequestId())
		if err == nil && x.GetRequestId() != "" {
			if j, dup := seen[x.GetRequestId()]; dup {
				err = fieldError("request_id", "unique", "repeats the request_id of items["+strconv.Itoa(j)+"]")
			} else {
				seen[x.GetRequestId()] = i
			}
		}
		if err != nil {
			resp.Results[i] = &pb.TokenizeBatchResult{Index: uint32(i),
				Outcome: &pb.TokenizeBatchResult_Error{Error: itemErrorOf(err, i)}}
			continue
		}
		items = append(items, it)
		where = append(where, i)
	}
	if len(items) > 0 {
		for j, r := range s.n.tokenize(ctx, e, items) {
			i := where[j]
			out := &pb.TokenizeBatchResult{Index: uint32(i)}
			if r.err != nil {
				out.Outcome = &pb.TokenizeBatchResult_Error{Error: itemErrorOf(r.err, i)}
			} else {
				out.Outcome = &pb.TokenizeBatchResult_Success{Success: r.resp}
			}
			resp.Results[i] = out
		}
	}
	return resp, nil
}

func (s *tokenService) Detokenize(ctx context.Context, req *pb.DetokenizeRequest) (*pb.DetokenizeResponse, error) {
	ri := infoFrom(ctx)
	ri.scheme, ri.masked = logName(req.GetScheme()), maskToken(req.GetToken())
	mode, err := readMode(req.GetConsistency())
	if err != nil {
		return nil, err
	}
	e, err := s.n.schemes.get(ctx, "scheme", req.GetScheme())
	if err != nil {
		return nil, err
	}
	r := s.n.detokenize(ctx, e, []string{req.GetToken()}, func(int) string { return "token" }, mode, req.GetMasked(), req.GetKeyVersion())[0]
	return r.resp, r.err
}

func (s *tokenService) DetokenizeBatch(ctx context.Context, req *pb.DetokenizeBatchRequest) (*pb.DetokenizeBatchResponse, error) {
	ri := infoFrom(ctx)
	ri.scheme, ri.items = logName(req.GetScheme()), len(req.GetItems())
	if err := batchSize(len(req.GetItems())); err != nil {
		return nil, err
	}
	mode, err := readMode(req.GetConsistency())
	if err != nil {
		return nil, err
	}
	e, err := s.n.schemes.get(ctx, "scheme", req.GetScheme())
	if err != nil {
		return nil, err
	}
	tokens := make([]string, len(req.GetItems()))
	for i, x := range req.GetItems() {
		tokens[i] = x.GetToken()
	}
	resp := &pb.DetokenizeBatchResponse{Results: make([]*pb.DetokenizeBatchResult, len(tokens))}
	for i, r := range s.n.detokenize(ctx, e, tokens, func(int) string { return "token" }, mode, req.GetMasked(), req.GetKeyVersion()) {
		out := &pb.DetokenizeBatchResult{Index: uint32(i)}
		if r.err != nil {
			out.Outcome = &pb.DetokenizeBatchResult_Error{Error: itemErrorOf(r.err, i)}
		} else {
			out.Outcome = &pb.DetokenizeBatchResult_Success{Success: r.resp}
		}
		resp.Results[i] = out
	}
	return resp, nil
}

func (s *tokenService) DeleteToken(ctx context.Context, req *pb.DeleteTokenRequest) (*pb.DeleteTokenResponse, error) {
	ri := infoFrom(ctx)
	ri.scheme, ri.masked = logName(req.GetScheme()), maskToken(req.GetToken())
	e, err := s.n.schemes.get(ctx, "scheme", req.GetScheme())
	if err != nil {
		return nil, err
	}
	if err := checkRequestID("request_id", req.GetRequestId()); err != nil {
		return nil, err
	}
	var idem []byte
	if req.GetRequestId() != "" {
		idem = idemKey(callerFrom(ctx).identity, methodDelete, e.name(), req.GetRequestId())
	}
	deleted, err := s.n.deleteToken(ctx, e, req.GetToken(), idem)
	if err != nil {
		return nil, err
	}
	if deleted {
		s.n.log.Info("token deleted", "scheme", e.name(), "token", maskToken(req.GetToken()), "identity", callerFrom(ctx).identity)
	}
	return &pb.DeleteTokenResponse{Deleted: deleted}, nil
}

func (s *signingService) Sign(ctx context.Context, req *pb.SignRequest) (*pb.SignResponse, error) {
	infoFrom(ctx).key = logName(req.GetKey())
	return s.n.Sign(ctx, req.GetKey(), req.GetKeyVersion(), req.GetMessage())
}

func (s *signingService) Verify(ctx context.Context, req *pb.VerifyRequest) (*pb.VerifyResponse, error) {
	return s.n.Verify(ctx, req.GetKey(), req.GetKeyVersion(), req.GetMessage(), req.GetSignature())
}

func (s *signingService) GetPublicKey(ctx context.Context, req *pb.GetPublicKeyRequest) (*pb.GetPublicKeyResponse, error) {
	return s.n.GetPublicKey(ctx, req.GetKey(), req.GetKeyVersion())
}

func (s *adminService) CreateScheme(ctx context.Context, req *pb.CreateSchemeRequest) (*pb.CreateSchemeResponse, error) {
	infoFrom(ctx).scheme = logName(req.GetScheme().GetName())
	sc, created, err := s.n.CreateScheme(ctx, req.GetScheme())
	if err != nil {
		return nil, err
	}
	return &pb.CreateSchemeResponse{Scheme: sc, Created: created}, nil
}

func (s *adminService) GetScheme(ctx context.Context, req *pb.GetSchemeRequest) (*pb.GetSchemeResponse, error) {
	sc, err := s.n.GetScheme(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return &pb.GetSchemeResponse{Scheme: sc}, nil
}

func (s *adminService) ListSchemes(ctx context.Context, req *pb.ListSchemesRequest) (*pb.ListSchemesResponse, error) {
	list, next, err := s.n.ListSchemes(ctx, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &pb.ListSchemesResponse{Schemes: list, NextPageToken: next}, nil
}

func (s *adminService) CreateKey(ctx context.Context, req *pb.CreateKeyRequest) (*pb.CreateKeyResponse, error) {
	info, created, err := s.n.CreateKeyWithOptions(ctx, req.GetName(), req.GetType(), req.GetPurpose(), req.GetCryptoperiod().AsDuration())
	if err != nil {
		return nil, err
	}
	return &pb.CreateKeyResponse{Key: info, Created: created}, nil
}

func (s *adminService) GetKey(ctx context.Context, req *pb.GetKeyRequest) (*pb.GetKeyResponse, error) {
	info, err := s.n.GetKey(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return &pb.GetKeyResponse{Key: info}, nil
}

func (s *adminService) ListKeys(ctx context.Context, req *pb.ListKeysRequest) (*pb.ListKeysResponse, error) {
	list, next, err := s.n.ListKeys(ctx, req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &pb.ListKeysResponse{Keys: list, NextPageToken: next}, nil
}

func (s *clusterService) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	return s.n.ClusterStatus(ctx)
}

func (s *clusterService) Join(ctx context.Context, req *pb.JoinRequest) (*pb.JoinResponse, error) {
	c := callerFrom(ctx)
	if c.roles&pki.RoleAdmin == 0 && c.identity != pki.NodeIdentity(req.GetNodeId()) {
		return nil, fmt.Errorf("%w: a node may only ask to join as itself", pki.ErrPermissionDenied)
	}
	added, err := s.n.Join(ctx, req.GetNodeId(), req.GetRaftAddress(), req.GetNonvoter())
	if err != nil {
		return nil, err
	}
	return &pb.JoinResponse{Added: added}, nil
}

func (s *clusterService) Remove(ctx context.Context, req *pb.RemoveRequest) (*pb.RemoveResponse, error) {
	removed, err := s.n.Remove(ctx, req.GetNodeId())
	if err != nil {
		return nil, err
	}
	return &pb.RemoveResponse{Removed: removed}, nil
}

func (s *clusterService) ListAuditAnchors(ctx context.Context, req *pb.ListAuditAnchorsRequest) (*pb.ListAuditAnchorsResponse, error) {
	list, next, err := s.n.ListAuditAnchors(ctx, req.GetChain(), req.GetNodeId(), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	return &pb.ListAuditAnchorsResponse{Anchors: list, NextPageToken: next}, nil
}

func (s *clusterService) TransferLeadership(ctx context.Context, req *pb.TransferLeadershipRequest) (*pb.TransferLeadershipResponse, error) {
	id, err := s.n.TransferLeadership(ctx, req.GetTargetNodeId())
	if err != nil {
		return nil, err
	}
	return &pb.TransferLeadershipResponse{LeaderId: id}, nil
}
