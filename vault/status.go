package vault

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/keys/fpe"
	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/ceremony"
	"github.com/panvault/panvault/vault/pki"
	"github.com/panvault/panvault/vault/scheme"
)

// This file is the one place where errors become gRPC statuses. Every error a
// handler returns goes through statusOf (single calls) or itemErrorOf (batch
// items); nothing else in the package builds a status.

// errorDomain is the google.rpc.ErrorInfo domain of panvault's reasons.
const errorDomain = "panvault.dev"

// unknownOutcomeMsg tells a client what to do after raftstore.ErrUnknownOutcome.
const unknownOutcomeMsg = "outcome unknown (leadership changed or the write timed out): retry with the same request_id"

// statusRule maps one sentinel to a code and a stable reason. msg, when set,
// replaces the error's own text (for errors whose text is not meant for
// clients, or that need advice).
type statusRule struct {
	err    error
	code   codes.Code
	reason string
	msg    string
}

// statusTable is checked in order with errors.Is; the first match wins, so
// more specific sentinels come first.
var statusTable = []statusRule{
	// Access.
	{pki.ErrUnauthenticated, codes.Unauthenticated, "UNAUTHENTICATED", ""},
	{pki.ErrPermissionDenied, codes.PermissionDenied, "PERMISSION_DENIED", ""},

	// Input.
	{ErrOversizedBatch, codes.InvalidArgument, "OVERSIZED_BATCH", ""},
	{card.ErrEmpty, codes.InvalidArgument, "PAN_REQUIRED", ""},
	{card.ErrNotDigits, codes.InvalidArgument, "PAN_NOT_DIGITS", ""},
	{card.ErrLength, codes.InvalidArgument, "PAN_LENGTH", ""},
	{card.ErrLuhn, codes.InvalidArgument, "INVALID_LUHN", ""},
	{scheme.ErrTokenFormat, codes.InvalidArgument, "TOKEN_FORMAT", ""},
	{scheme.ErrInvalidDefinition, codes.InvalidArgument, "INVALID_SCHEME", ""},
	{ErrInvalidArgument, codes.InvalidArgument, "", ""},
	{keys.ErrInvalidInput, codes.InvalidArgument, "", ""},

	// Lookups.
	{ErrSchemeNotFound, codes.NotFound, "SCHEME_NOT_FOUND", ""},
	{ErrTokenExpired, codes.NotFound, "TOKEN_EXPIRED", ""},
	{ErrTokenNotFound, codes.NotFound, "TOKEN_NOT_FOUND", ""},
	{scheme.ErrNotToken, codes.NotFound, "TOKEN_NOT_FOUND", "token not found"},
	{ErrKeyNotFound, codes.NotFound, "KEY_NOT_FOUND", ""},
	{ErrCeremonyNotFound, codes.NotFound, "CEREMONY_NOT_FOUND", ""},
	{raftstore.ErrUnknownMember, codes.NotFound, "NODE_NOT_FOUND", ""},
	{ErrAlreadyExists, codes.AlreadyExists, "ALREADY_EXISTS", ""},
	{ErrCustodiansInitialised, codes.AlreadyExists, "CUSTODIANS_INITIALISED", ""},

	// Ceremonies (vault/ceremony/DESIGN.md). Their messages name
	// custodians, proposal ids, fingerprints and KCVs, never key material.
	{ceremony.ErrUnknownCustodian, codes.PermissionDenied, "UNKNOWN_CUSTODIAN", ""},
	{ceremony.ErrUnknownKey, codes.PermissionDenied, "CUSTODIAN_KEY_MISMATCH", ""},
	{ceremony.ErrBadSignature, codes.PermissionDenied, "BAD_SIGNATURE", ""},
	{ceremony.ErrSelfApproval, codes.PermissionDenied, "SELF_APPROVAL", ""},
	{ceremony.ErrDuplicateApproval, codes.AlreadyExists, "DUPLICATE_APPROVAL", ""},
	{ceremony.ErrAlreadyVoted, codes.AlreadyExists, "ALREADY_VOTED", ""},
	{ceremony.ErrCustodianExists, codes.AlreadyExists, "CUSTODIAN_EXISTS", ""},
	{ceremony.ErrExpired, codes.FailedPrecondition, "PROPOSAL_EXPIRED", ""},
	{ceremony.ErrClosed, codes.FailedPrecondition, "PROPOSAL_CLOSED", ""},
	{ceremony.ErrNotReady, codes.FailedPrecondition, "QUORUM_NOT_REACHED", ""},
	{ceremony.ErrNotExpired, codes.FailedPrecondition, "PROPOSAL_NOT_EXPIRED", ""},
	{ceremony.ErrQuorumUnreachable, codes.FailedPrecondition, "QUORUM", ""},
	{ceremony.ErrQuorum, codes.FailedPrecondition, "QUORUM", ""},
	{ceremony.ErrWrongProposal, codes.InvalidArgument, "WRONG_PROPOSAL", ""},
	{ceremony.ErrUnsupportedKey, codes.InvalidArgument, "UNSUPPORTED_CUSTODIAN_KEY", ""},
	{ceremony.ErrMalformed, codes.InvalidArgument, "MALFORMED", ""},
	{ceremony.ErrInvalid, codes.InvalidArgument, "INVALID_CEREMONY", ""},
	{ceremony.ErrChain, codes.DataLoss, "CEREMONY_LOG_CHAIN", ""},
	{ceremony.ErrReplay, codes.DataLoss, "CEREMONY_LOG_REPLAY", ""},
	{ErrConflict, codes.Aborted, "CONFLICT", ""},

	// The request is well-formed but cannot be served as things are.
	{scheme.ErrLengthNotAllowed, codes.FailedPrecondition, "PAN_LENGTH_NOT_ALLOWED", ""},
	{scheme.ErrFixedPoint, codes.FailedPrecondition, "FF1_FIXED_POINT", ""},
	{ErrWrongPurpose, codes.FailedPrecondition, "KEY_WRONG_PURPOSE", ""},
	{ErrKeyVersionDestroyed, codes.FailedPrecondition, "KEY_VERSION_DESTROYED", ""},
	{ErrKeyVersionRetired, codes.FailedPrecondition, "KEY_VERSION_RETIRED", ""},
	{ErrKeyState, codes.FailedPrecondition, "KEY_STATE", ""},
	{ErrCustodiansNotInitialised, codes.FailedPrecondition, "CUSTODIANS_NOT_INITIALISED", ""},
	{ErrCeremonyRequired, codes.FailedPrecondition, "CEREMONY_REQUIRED", ""},
	{ErrReencryptPending, codes.FailedPrecondition, "REENCRYPT_PENDING", ""},
	{ErrMasterKeyNotStaged, codes.FailedPrecondition, "MASTER_KEY_NOT_STAGED", ""},
	{keys.ErrMasterKeyExists, codes.FailedPrecondition, "MASTER_KEY_EXISTS", ""},
	{keys.ErrMasterKeyInUse, codes.FailedPrecondition, "MASTER_KEY_IN_USE", ""},
	{keys.ErrKCVMismatch, codes.FailedPrecondition, "COMPONENT_KCV_MISMATCH", ""},
	{ErrWrongMode, codes.FailedPrecondition, "WRONG_SCHEME_MODE", ""},
	{keys.ErrNotWrappable, codes.FailedPrecondition, "KEY_NOT_WRAPPABLE", ""},
	{keys.ErrWrongKeyType, codes.FailedPrecondition, "KEY_WRONG_PURPOSE", ""},
	{keys.ErrMasterKeyMismatch, codes.FailedPrecondition, "MASTER_KEY_MISMATCH", ""},
	{keys.ErrMasterKeyMissing, codes.FailedPrecondition, "MASTER_KEY_MISSING", ""},
	{ErrKeyUnavailable, codes.FailedPrecondition, "KEY_UNAVAILABLE", ""},
	{raftstore.ErrMemberConflict, codes.FailedPrecondition, "MEMBER_CONFLICT", ""},
	{raftstore.ErrPeerUnreachable, codes.FailedPrecondition, "PEER_UNREACHABLE", ""},
	{ErrUnsupported, codes.Unimplemented, "UNSUPPORTED", ""},
	{ErrTokenSpace, codes.ResourceExhausted, "TOKEN_SPACE_CROWDED", ""},

	// Retry later (with the same request id where there is one).
	{raftstore.ErrUnknownOutcome, codes.Unavailable, "OUTCOME_UNKNOWN", unknownOutcomeMsg},
	{raftstore.ErrNoLeader, codes.Unavailable, "NO_LEADER", ""},
	{ErrStaleReadTooOld, codes.Unavailable, "STALE_READ_TOO_OLD", ""},
	{raftstore.ErrNotLeader, codes.Unavailable, "NOT_LEADER", ""},
	{raftstore.ErrNotApplied, codes.Unavailable, "NOT_APPLIED", ""},
	{raftstore.ErrStopped, codes.Unavailable, "NODE_STOPPED", ""},
	{raftstore.ErrClosed, codes.Unavailable, "SHUTTING_DOWN", ""},
	{ErrClosed, codes.Unavailable, "SHUTTING_DOWN", ""},
	{ErrAuditUnavailable, codes.Unavailable, "AUDIT_UNAVAILABLE", ""},
	{keys.ErrHSMUnavailable, codes.Unavailable, "HSM_UNAVAILABLE", ""},
	{keys.ErrNoSession, codes.Unavailable, "HSM_BUSY", ""},
	{keys.ErrClosed, codes.Unavailable, "SHUTTING_DOWN", ""},
	{fpe.ErrCipher, codes.Unavailable, "HSM_UNAVAILABLE", "hsm block cipher failed"},
	{context.DeadlineExceeded, codes.DeadlineExceeded, "", ""},
	{context.Canceled, codes.Canceled, "", ""},

	// Server-side faults. Their text is not for clients.
	{errHandlerPanic, codes.Internal, "INTERNAL", "internal error"},
	{ErrCorruptRecord, codes.DataLoss, "RECORD_CORRUPT", "stored record failed its integrity check"},
	{keys.ErrDecrypt, codes.DataLoss, "RECORD_CORRUPT", "stored record failed its integrity check"},
}

// classify returns the code, reason and client-facing message for err.
// Unknown errors are INTERNAL with a fixed message: their text was never
// reviewed for clients.
func classify(err error) (codes.Code, string, string) {
	if s, ok := directStatus(err); ok {
		return s.Code(), "", s.Message()
	}
	for _, r := range statusTable {
		if errors.Is(err, r.err) {
			msg := r.msg
			if msg == "" {
				msg = err.Error()
			}
			return r.code, r.reason, msg
		}
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		// A status wrapped inside another error (a peer's answer carried by
		// raftstore, say): keep its code, not its text, which may name
		// internal addresses or another node's errors.
		return s.Code(), "", strings.ToLower(s.Code().String())
	}
	return codes.Internal, "INTERNAL", "internal error"
}

// directStatus returns err's gRPC status only when err itself is a status
// error (not one wrapped inside another error), so that wrapped errors go
// through the table and keep their reason and reviewed message.
func directStatus(err error) (*status.Status, bool) {
	se, ok := err.(interface{ GRPCStatus() *status.Status })
	if !ok {
		return nil, false
	}
	s := se.GRPCStatus()
	return s, s != nil && s.Code() != codes.Unknown
}

// violations returns err's field violations, with each field renamed by
// relabel (nil keeps it).
func violations(err error, relabel func(string) string) []*card.RuleError {
	res := card.RuleErrors(err)
	if relabel == nil {
		return res
	}
	out := make([]*card.RuleError, len(res))
	for i, r := range res {
		out[i] = r.WithField(relabel(r.Field))
	}
	return out
}

// statusOf converts a handler error to a gRPC status error with
// google.rpc.ErrorInfo (reason) and google.rpc.BadRequest (field violations)
// details. nil stays nil.
func statusOf(err error) error {
	s, _, _ := mapError(err)
	return s
}

// mapError is statusOf returning also the code and the reason it attached
// (none for an error that was a status already), for the audit entry.
func mapError(err error) (error, codes.Code, string) {
	if err == nil {
		return nil, codes.OK, ""
	}
	if s, ok := directStatus(err); ok {
		return err, s.Code(), ""
	}
	code, reason, msg := classify(err)
	st := status.New(code, msg)
	var details []protoadapt.MessageV1
	if reason != "" {
		details = append(details, &errdetails.ErrorInfo{Reason: reason, Domain: errorDomain})
	}
	if vs := violations(err, nil); len(vs) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range vs {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: v.Field, Description: v.Description, Reason: strings.ToUpper(v.Rule)})
		}
		details = append(details, br)
	}
	if len(details) > 0 {
		if withDetails, derr := st.WithDetails(details...); derr == nil {
			st = withDetails
		}
	}
	return st.Err(), code, reason
}

// codeNames are the canonical names of the gRPC codes (as in the gRPC
// specification and google.rpc.Code), indexed by code.
var codeNames = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// CodeName returns c's canonical upper-snake name ("INVALID_ARGUMENT"),
// "CODE(n)" for a code outside the specification.
func CodeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "CODE(" + strconv.Itoa(int(c)) + ")"
}

// itemErrorOf converts the error of batch item i to an ItemError. Field
// violations are renamed from the single-call name ("pan") to the batch path
// ("items[3].pan").
func itemErrorOf(err error, i int) *pb.ItemError {
	code, reason, msg := classify(err)
	prefix := "items[" + strconv.Itoa(i) + "]."
	relabel := func(f string) string {
		if f == "" {
			return strings.TrimSuffix(prefix, ".")
		}
		if strings.HasPrefix(f, "items[") {
			return f
		}
		return prefix + f
	}
	ie := &pb.ItemError{Code: int32(code), Message: msg, Reason: reason}
	for _, v := range violations(err, relabel) {
		ie.FieldViolations = append(ie.FieldViolations, &pb.FieldViolation{Field: v.Field, Description: v.Description})
	}
	if len(ie.FieldViolations) > 0 {
		// The message names the single-call field; say which item it was.
		ie.Message = prefix + msg
	}
	return ie
}
