package vault

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/panvault/panvault/keys"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/scheme"
	"github.com/panvault/panvault/vault/vaultpb"
)

// Conversions between CeremonyService messages and package ceremony's
// values. Field errors name the request field.

// custodianFromAPI converts a registration (field names the message).
func custodianFromAPI(field string, r *pb.CustodianRegistration) (ceremony.Custodian, error) {
	if r == nil {
		return ceremony.Custodian{}, fieldError(field, scheme.RuleRequired, "is required")
	}
	if err := checkName(field+".name", r.GetName()); err != nil {
		return ceremony.Custodian{}, err
	}
	if len(r.GetPublicKeyDer()) == 0 {
		return ceremony.Custodian{}, fieldError(field+".public_key_der", scheme.RuleRequired, "is required")
	}
	if r.GetAcknowledgeTime() == nil || r.GetAcknowledgeTime().CheckValid() != nil {
		return ceremony.Custodian{}, fieldError(field+".acknowledge_time", scheme.RuleRequired, "is required")
	}
	if len(r.GetAckSignature()) == 0 {
		return ceremony.Custodian{}, fieldError(field+".ack_signature", scheme.RuleRequired, "is required")
	}
	return ceremony.Custodian{
		Name:         r.GetName(),
		PublicKey:    r.GetPublicKeyDer(),
		Acknowledged: r.GetAcknowledgeTime().AsTime(),
		AckSignature: r.GetAckSignature(),
	}, nil
}

func custodianToAPI(c ceremony.Custodian) *pb.Custodian {
	out := &pb.Custodian{
		Name:            c.Name,
		PublicKeyDer:    c.PublicKey,
		Fingerprint:     c.Fingerprint().String(),
		AcknowledgeTime: timestamppb.New(c.Acknowledged),
		AckSignature:    c.AckSignature,
		RegisterTime:    timestamppb.New(c.Registered),
	}
	if a, err := c.Algorithm(); err == nil {
		out.Algorithm = a.String()
	}
	return out
}

func registryToAPI(reg *ceremony.Registry) ([]*pb.Custodian, uint32) {
	out := make([]*pb.Custodian, 0, reg.N())
	for _, c := range reg.Custodians {
		out = append(out, custodianToAPI(c))
	}
	return out, uint32(reg.Quorum)
}

// paramsFromAPI converts proposal parameters.
func paramsFromAPI(p *pb.CeremonyParams) (ceremony.Params, error) {
	switch x := p.GetParams().(type) {
	case *pb.CeremonyParams_CreateKey:
		q := x.CreateKey
		if err := checkName("params.create_key.name", q.GetName()); err != nil {
			return nil, err
		}
		kt, purpose, err := keyTypeFor(q.GetType(), q.GetPurpose())
		if err != nil {
			return nil, prefixFields(err, "params.create_key.")
		}
		period := q.GetCryptoperiod().AsDuration()
		if q.GetCryptoperiod() == nil {
			period = defaultCryptoperiod(purpose)
		}
		if err := checkCryptoperiod("params.create_key.cryptoperiod", period); err != nil {
			return nil, err
		}
		return ceremony.CreateKey{Name: q.GetName(), Type: kt, Purpose: ceremony.Purpose(purpose), Cryptoperiod: period}, nil
	case *pb.CeremonyParams_RotateKey:
		if err := checkName("params.rotate_key.name", x.RotateKey.GetName()); err != nil {
			return nil, err
		}
		return ceremony.RotateKey{Name: x.RotateKey.GetName()}, nil
	case *pb.CeremonyParams_SetMinDecryptionVersion:
		q := x.SetMinDecryptionVersion
		if err := checkName("params.set_min_decryption_version.name", q.GetName()); err != nil {
			return nil, err
		}
		if q.GetVersion() == 0 {
			return nil, fieldError("params.set_min_decryption_version.version", scheme.RuleRequired, "is required")
		}
		return ceremony.SetMinDecryptionVersion{Name: q.GetName(), Version: q.GetVersion()}, nil
	case *pb.CeremonyParams_DestroyVersion:
		q := x.DestroyVersion
		if err := checkName("params.destroy_version.name", q.GetName()); err != nil {
			return nil, err
		}
		if q.GetVersion() == 0 {
			return nil, fieldError("params.destroy_version.version", scheme.RuleRequired, "is required")
		}
		return ceremony.DestroyVersion{Name: q.GetName(), Version: q.GetVersion()}, nil
	case *pb.CeremonyParams_ChangeSchemeKey:
		q := x.ChangeSchemeKey
		if err := checkName("params.change_scheme_key.scheme", q.GetScheme()); err != nil {
			return nil, err
		}
		if err := checkName("params.change_scheme_key.key", q.GetKey()); err != nil {
			return nil, err
		}
		return ceremony.ChangeSchemeKey{Scheme: q.GetScheme(), Key: q.GetKey()}, nil
	case *pb.CeremonyParams_AddCustodian:
		c, err := custodianFromAPI("params.add_custodian.custodian", x.AddCustodian.GetCustodian())
		if err != nil {
			return nil, err
		}
		return c.AddProposal(), nil
	case *pb.CeremonyParams_RemoveCustodian:
		if err := checkName("params.remove_custodian.name", x.RemoveCustodian.GetName()); err != nil {
			return nil, err
		}
		return ceremony.RemoveCustodian{Name: x.RemoveCustodian.GetName()}, nil
	case *pb.CeremonyParams_ChangeQuorum:
		return ceremony.ChangeQuorum{M: x.ChangeQuorum.GetQuorum()}, nil
	case *pb.CeremonyParams_RotateMasterKey:
		q := x.RotateMasterKey
		mk, err := keys.ParseKCV(q.GetMasterKcv())
		if err != nil {
			return nil, fieldError("params.rotate_master_key.master_kcv", scheme.RuleFormat, "must be 6 hex digits")
		}
		out := ceremony.RotateMasterKey{MasterKCV: mk}
		for i, s := range q.GetComponentKcvs() {
			k, err := keys.ParseKCV(s)
			if err != nil {
				return nil, fieldError(fmt.Sprintf("params.rotate_master_key.component_kcvs[%d]", i), scheme.RuleFormat, "must be 6 hex digits")
			}
			out.ComponentKCVs = append(out.ComponentKCVs, k)
		}
		return out, nil
	}
	return nil, fieldError("params", scheme.RuleRequired, "must hold exactly one kind's parameters")
}

// paramsToAPI converts proposal parameters back (for display).
func paramsToAPI(p ceremony.Params) *pb.CeremonyParams {
	switch q := p.(type) {
	case ceremony.CreateKey:
		return &pb.CeremonyParams{Params: &pb.CeremonyParams_CreateKey{CreateKey: &pb.CreateKeyParams{
			Name: q.Name, Type: apiKeyType(q.Type), Purpose: apiPurpose(vaultpb.KeyPurpose(q.Purpose)),
			Cryptoperiod: durationpb.New(q.Cryptoperiod)}}}
	case ceremony.RotateKey:
		return &pb.CeremonyParams{Params: &pb.CeremonyParams_RotateKey{RotateKey: &pb.RotateKeyParams{Name: q.Name}}}
	case ceremony.SetMinDecryptionVersion:
		return &pb.CeremonyParams{Params: &pb.CeremonyParams_SetMinDecryptionVersion{SetMinDecryptionVersion: &pb.SetMinDecryptionVersionParams{Name: q.Name, Version: q.Version}}}
	case ceremony.DestroyVersion:
		return &pb.CeremonyParams{Params: &pb.CeremonyParams_DestroyVersion{DestroyVersion: &pb.DestroyVersionParams{Name: q.Name, Version: q.Version}}}
	case ceremony.ChangeSchemeKey:
		return &pb.CeremonyParams{Params: &pb.CeremonyParams_ChangeSchemeKey{ChangeSchemeKey: &pb.ChangeSchemeKeyParams{Scheme: q.Scheme, Key: q.Key}}}
	case ceremony.AddCustodian:
		return &pb.CeremonyParams{Params: &pb.CeremonyParams_AddCustodian{AddCustodian: &pb.AddCustodianParams{Custodian: &pb.CustodianRegistration{
			Name: q.Name, PublicKeyDer: q.PublicKey, AcknowledgeTime: timestamppb.New(q.Acknowledged), AckSignature: q.AckSignature}}}}
	case ceremony.RemoveCustodian:
		return &pb.CeremonyParams{Params: &pb.CeremonyParams_RemoveCustodian{RemoveCustodian: &pb.RemoveCustodianParams{Name: q.Name}}}
	case ceremony.ChangeQuorum:
		return &pb.CeremonyParams{Params: &pb.CeremonyParams_ChangeQuorum{ChangeQuorum: &pb.ChangeQuorumParams{Quorum: q.M}}}
	case ceremony.RotateMasterKey:
		out := &pb.RotateMasterKeyParams{MasterKcv: q.MasterKCV.String()}
		for _, k := range q.ComponentKCVs {
			out.ComponentKcvs = append(out.ComponentKcvs, k.String())
		}
		return &pb.CeremonyParams{Params: &pb.CeremonyParams_RotateMasterKey{RotateMasterKey: out}}
	}
	return nil
}

func timeOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// ceremonyToAPI converts a state counted under reg.
func ceremonyToAPI(st ceremony.State, reg *ceremony.Registry) *pb.Ceremony {
	raw, _ := st.Proposal.Marshal()
	out := &pb.Ceremony{
		Id:             st.ID,
		Kind:           pb.CeremonyKind(st.Proposal.Kind()),
		Status:         pb.CeremonyStatus(st.Status),
		Proposer:       st.Proposal.Proposer,
		CreateTime:     timestamppb.New(st.Proposal.Created),
		ExpireTime:     timestamppb.New(st.Proposal.Expires),
		CloseTime:      timeOrNil(st.Closed),
		Outcome:        st.Outcome,
		Proposal:       raw,
		TranscriptHash: st.Transcript.String(),
		Params:         paramsToAPI(st.Proposal.Params),
	}
	if d, err := ceremony.Describe(st.Proposal); err == nil {
		out.Description = d
	}
	if reg != nil {
		out.ValidApprovals = uint32(st.ValidApprovals(reg))
		out.Quorum = uint32(reg.Quorum)
	}
	for _, a := range st.Approvals {
		counts := false
		if reg != nil {
			c, ok := reg.Lookup(a.Custodian)
			counts = ok && c.Fingerprint() == a.Key
		}
		out.Approvals = append(out.Approvals, &pb.CeremonyVote{Custodian: a.Custodian, KeyFingerprint: a.Key.String(),
			Signature: a.Signature, Time: timestamppb.New(a.At), Counts: counts})
	}
	for _, r := range st.Rejections {
		out.Rejections = append(out.Rejections, &pb.CeremonyVote{Custodian: r.Custodian, KeyFingerprint: r.Key.String(),
			Signature: r.Signature, Time: timestamppb.New(r.At), Reason: r.Reason})
	}
	return out
}

// prefixFields returns err (an ErrInvalidArgument with field violations)
// with each field prefixed.
func prefixFields(err error, prefix string) error {
	res := card.RuleErrors(err)
	if len(res) == 0 {
		return err
	}
	out := make([]error, 0, len(res))
	for _, r := range res {
		out = append(out, r.WithField(prefix+r.Field))
	}
	return fmt.Errorf("%w: %w", ErrInvalidArgument, errors.Join(out...))
}

// fingerprintFromAPI reads a 32-byte key fingerprint (empty: none).
func fingerprintFromAPI(field string, b []byte) (ceremony.Fingerprint, error) {
	var fp ceremony.Fingerprint
	if len(b) == 0 {
		return fp, nil
	}
	if len(b) != len(fp) {
		return fp, fieldError(field, scheme.RuleFormat, "must be 32 bytes (sha-256 of the pkix der public key)")
	}
	copy(fp[:], b)
	return fp, nil
}

func logEntryToAPI(e ceremony.LogEntry, raw []byte) *pb.CeremonyLogEntry {
	return &pb.CeremonyLogEntry{
		Seq:        e.Seq,
		Type:       e.Type.String(),
		Time:       timestamppb.New(e.Time),
		CeremonyId: e.ProposalID,
		Custodian:  e.Custodian,
		Detail:     e.Detail,
		Hash:       e.Hash.String(),
		PrevHash:   e.Prev.String(),
		Raw:        raw,
	}
}

func reencryptToAPI(key string, j *vaultpb.ReencryptJob) *pb.ReencryptStatus {
	st := pb.ReencryptState_REENCRYPT_STATE_RUNNING
	if j.GetDone() {
		st = pb.ReencryptState_REENCRYPT_STATE_DONE
	}
	out := &pb.ReencryptStatus{
		Key:           key,
		TargetVersion: j.GetTargetVersion(),
		State:         st,
		Done:          j.GetVisited(),
		Reencrypted:   j.GetReencrypted(),
		Skipped:       j.GetSkipped(),
		Total:         j.GetTotal(),
		StartTime:     timestampOrNil(j.GetStartUnixNanos()),
		UpdateTime:    timestampOrNil(j.GetUpdateUnixNanos()),
		FinishTime:    timestampOrNil(j.GetFinishUnixNanos()),
	}
	if out.Total < out.Done {
		out.Total = out.Done
	}
	return out
}
