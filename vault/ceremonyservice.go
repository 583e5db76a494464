package vault

import (
	"context"
	"fmt"
	"strings"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/scheme"
)

// ceremonyService adapts CeremonyService to the Node. Errors go back raw;
// the edge maps them (status.go).
type ceremonyService struct {
	pb.UnimplementedCeremonyServiceServer
	*services
}

var _ pb.CeremonyServiceServer = (*ceremonyService)(nil)

// Page sizes of ceremony listings.
const (
	defaultCeremonyPage = 100
	maxCeremonyPage     = 1000
)

func pageSize(n uint32) int {
	switch {
	case n == 0:
		return defaultCeremonyPage
	case n > maxCeremonyPage:
		return maxCeremonyPage
	}
	return int(n)
}

func (s *ceremonyService) InitCustodians(ctx context.Context, req *pb.InitCustodiansRequest) (*pb.InitCustodiansResponse, error) {
	if len(req.GetCustodians()) == 0 {
		return nil, fieldError("custodians", scheme.RuleRequired, "needs at least two custodians")
	}
	if len(req.GetCustodians()) > ceremony.MaxCustodians {
		return nil, fieldError("custodians", "max_items", fmt.Sprintf("at most %d custodians", ceremony.MaxCustodians))
	}
	cs := make([]ceremony.Custodian, 0, len(req.GetCustodians()))
	for i, r := range req.GetCustodians() {
		c, err := custodianFromAPI(fmt.Sprintf("custodians[%d]", i), r)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	reg, created, err := s.n.InitCustodians(ctx, cs, int(req.GetQuorum()))
	if err != nil {
		return nil, err
	}
	list, q := registryToAPI(reg)
	return &pb.InitCustodiansResponse{Custodians: list, Quorum: q, Created: created}, nil
}

func (s *ceremonyService) ListCustodians(ctx context.Context, _ *pb.ListCustodiansRequest) (*pb.ListCustodiansResponse, error) {
	reg, err := s.n.Custodians(ctx)
	if err != nil {
		return nil, err
	}
	list, q := registryToAPI(reg)
	return &pb.ListCustodiansResponse{Custodians: list, Quorum: q}, nil
}

func (s *ceremonyService) Propose(ctx context.Context, req *pb.ProposeRequest) (*pb.ProposeResponse, error) {
	params, err := paramsFromAPI(req.GetParams())
	if err != nil {
		return nil, err
	}
	st, reg, err := s.n.ProposeCeremony(ctx, params, callerFrom(ctx).identity, req.GetTtl().AsDuration())
	if err != nil {
		return nil, err
	}
	return &pb.ProposeResponse{Ceremony: ceremonyToAPI(st, reg)}, nil
}

func (s *ceremonyService) GetCeremony(ctx context.Context, req *pb.GetCeremonyRequest) (*pb.GetCeremonyResponse, error) {
	st, reg, err := s.n.Ceremony(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &pb.GetCeremonyResponse{Ceremony: ceremonyToAPI(st, reg)}, nil
}

func (s *ceremonyService) ListCeremonies(ctx context.Context, req *pb.ListCeremoniesRequest) (*pb.ListCeremoniesResponse, error) {
	if req.GetPageToken() != "" {
		if err := checkCeremonyID(req.GetPageToken()); err != nil {
			return nil, fieldError("page_token", scheme.RuleFormat, "must be a next_page_token returned earlier")
		}
	}
	all, reg, err := s.n.Ceremonies(ctx, ceremony.Status(req.GetStatus()))
	if err != nil {
		return nil, err
	}
	start := 0
	if tok := req.GetPageToken(); tok != "" {
		for i, st := range all {
			if st.ID == tok {
				start = i + 1
				break
			}
		}
	}
	size := pageSize(req.GetPageSize())
	resp := &pb.ListCeremoniesResponse{}
	for i := start; i < len(all) && len(resp.Ceremonies) < size; i++ {
		resp.Ceremonies = append(resp.Ceremonies, ceremonyToAPI(all[i], reg))
		if len(resp.Ceremonies) == size && i+1 < len(all) {
			resp.NextPageToken = all[i].ID
		}
	}
	return resp, nil
}

func (s *ceremonyService) Approve(ctx context.Context, req *pb.ApproveRequest) (*pb.ApproveResponse, error) {
	fp, err := fingerprintFromAPI("key_fingerprint", req.GetKeyFingerprint())
	if err != nil {
		return nil, err
	}
	if req.GetCustodian() == "" && fp.IsZero() {
		return nil, fieldError("custodian", scheme.RuleRequired, "custodian or key_fingerprint is required")
	}
	if len(req.GetSignature()) == 0 {
		return nil, fieldError("signature", scheme.RuleRequired, "is required")
	}
	a := ceremony.Approval{Custodian: req.GetCustodian(), Key: fp, Signature: req.GetSignature()}
	if fp.IsZero() {
		// Name only: the registered key of that custodian must verify.
		reg, err := s.n.Custodians(ctx)
		if err != nil {
			return nil, err
		}
		c, ok := reg.Lookup(req.GetCustodian())
		if !ok {
			return nil, fmt.Errorf("%w: %q", ceremony.ErrUnknownCustodian, logName(req.GetCustodian()))
		}
		a.Key = c.Fingerprint()
	}
	st, reg, executed, err := s.n.ApproveCeremony(ctx, req.GetId(), a)
	if err != nil {
		return nil, err
	}
	return &pb.ApproveResponse{Ceremony: ceremonyToAPI(st, reg), Executed: executed}, nil
}

func (s *ceremonyService) Reject(ctx context.Context, req *pb.RejectRequest) (*pb.RejectResponse, error) {
	fp, err := fingerprintFromAPI("key_fingerprint", req.GetKeyFingerprint())
	if err != nil {
		return nil, err
	}
	if req.GetCustodian() == "" && fp.IsZero() {
		return nil, fieldError("custodian", scheme.RuleRequired, "custodian or key_fingerprint is required")
	}
	if len(req.GetSignature()) == 0 {
		return nil, fieldError("signature", scheme.RuleRequired, "is required")
	}
	r := ceremony.Rejection{Custodian: req.GetCustodian(), Key: fp, Reason: req.GetReason(), Signature: req.GetSignature()}
	if fp.IsZero() {
		reg, err := s.n.Custodians(ctx)
		if err != nil {
			return nil, err
		}
		c, ok := reg.Lookup(req.GetCustodian())
		if !ok {
			return nil, fmt.Errorf("%w: %q", ceremony.ErrUnknownCustodian, logName(req.GetCustodian()))
		}
		r.Key = c.Fingerprint()
	}
	st, reg, err := s.n.RejectCeremony(ctx, req.GetId(), r)
	if err != nil {
		return nil, err
	}
	return &pb.RejectResponse{Ceremony: ceremonyToAPI(st, reg)}, nil
}

func (s *ceremonyService) GetCeremonyLog(ctx context.Context, req *pb.GetCeremonyLogRequest) (*pb.GetCeremonyLogResponse, error) {
	es, raws, head, err := s.n.CeremonyLog(ctx, req.GetAfterSeq(), pageSize(req.GetPageSize()))
	if err != nil {
		return nil, err
	}
	resp := &pb.GetCeremonyLogResponse{HeadSeq: head}
	for i, e := range es {
		resp.Entries = append(resp.Entries, logEntryToAPI(e, raws[i]))
	}
	return resp, nil
}

func (s *ceremonyService) AuditCeremonyLog(ctx context.Context, _ *pb.AuditCeremonyLogRequest) (*pb.AuditCeremonyLogResponse, error) {
	rep, err := s.n.AuditCeremonies(ctx)
	if err != nil {
		return nil, err
	}
	resp := &pb.AuditCeremonyLogResponse{Entries: rep.Seq, HeadHash: rep.Head.String(), CeremoniesByStatus: map[string]uint32{}}
	for _, st := range rep.States {
		resp.CeremoniesByStatus[strings.ToLower(st.Status.String())]++
	}
	return resp, nil
}

func (s *ceremonyService) StartReencrypt(ctx context.Context, req *pb.StartReencryptRequest) (*pb.StartReencryptResponse, error) {
	job, started, err := s.n.StartReencrypt(ctx, req.GetKey())
	if err != nil {
		return nil, err
	}
	return &pb.StartReencryptResponse{Status: reencryptToAPI(req.GetKey(), job), Started: started}, nil
}

func (s *ceremonyService) GetReencryptStatus(ctx context.Context, req *pb.GetReencryptStatusRequest) (*pb.GetReencryptStatusResponse, error) {
	job, err := s.n.ReencryptStatus(ctx, req.GetKey())
	if err != nil {
		return nil, err
	}
	return &pb.GetReencryptStatusResponse{Status: reencryptToAPI(req.GetKey(), job)}, nil
}

func (s *ceremonyService) StageMasterKey(ctx context.Context, req *pb.StageMasterKeyRequest) (*pb.StageMasterKeyResponse, error) {
	want, err := keys.ParseKCV(req.GetMasterKcv())
	if err != nil {
		return nil, fieldError("master_kcv", scheme.RuleFormat, "must be 6 hex digits")
	}
	if n := len(req.GetComponents()); n < keys.MinComponents || n > keys.MaxComponents {
		return nil, fieldError("components", scheme.RuleAllowed, fmt.Sprintf("needs %d to %d components", keys.MinComponents, keys.MaxComponents))
	}
	comps := make([]*keys.Component, 0, len(req.GetComponents()))
	defer func() {
		for _, c := range comps {
			c.Zero()
		}
		for _, c := range req.GetComponents() {
			clear(c.Value)
		}
	}()
	for i, c := range req.GetComponents() {
		field := fmt.Sprintf("components[%d]", i)
		kcv, err := keys.ParseKCV(c.GetKcv())
		if err != nil {
			return nil, fieldError(field+".kcv", scheme.RuleFormat, "must be 6 hex digits")
		}
		if len(c.GetValue()) != keys.ComponentSize {
			return nil, fieldError(field+".value", scheme.RuleFormat, fmt.Sprintf("must be %d bytes", keys.ComponentSize))
		}
		comp, err := keys.NewComponent(append([]byte(nil), c.GetValue()...), kcv)
		if err != nil {
			return nil, fieldError(field+".value", scheme.RuleFormat, "is not a component")
		}
		comps = append(comps, comp)
	}
	created, err := s.n.StageMasterKey(ctx, comps, want)
	if err != nil {
		return nil, err
	}
	return &pb.StageMasterKeyResponse{NodeId: s.n.ID(), MasterKcv: want.String(), Staged: created}, nil
}

func (s *ceremonyService) GetMasterKeyStatus(ctx context.Context, _ *pb.GetMasterKeyStatusRequest) (*pb.GetMasterKeyStatusResponse, error) {
	cur, staged, err := s.n.MasterKeyStatus(ctx)
	if err != nil {
		return nil, err
	}
	resp := &pb.GetMasterKeyStatusResponse{CurrentKcv: cur.String()}
	for _, node := range sortedKeys(staged) {
		nm := &pb.NodeMasterKey{NodeId: node}
		for _, k := range staged[node] {
			nm.StagedKcvs = append(nm.StagedKcvs, k.String())
		}
		resp.Nodes = append(resp.Nodes, nm)
	}
	return resp, nil
}
