package vault

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/audit"
)

// The audit trail (DESIGN "Security rules"): every detokenize, sign and
// administrative call is appended to the node's hash-chained audit log
// (package audit) after its handler ran and before its answer leaves; when
// the entry cannot be written the call fails UNAVAILABLE
// (AUDIT_UNAVAILABLE) and its answer is dropped, so nothing is revealed
// that the trail does not show. Entries carry the caller, the method, the
// outcome and masked forms only. Tokenize, Verify and GetPublicKey are not
// audited: they reveal no card data and no signature.

// ErrAuditUnavailable: the audit log could not record the call.
var ErrAuditUnavailable = errors.New("audit log unavailable: the call was not answered")

// auditTimeout bounds the audit append of a call whose own deadline has
// passed: its outcome is recorded all the same.
const auditTimeout = 5 * time.Second

// auditedMethod reports whether calls of fullMethod are audited.
func auditedMethod(fullMethod string) bool {
	svc, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	switch svc {
	case pb.TokenService_ServiceDesc.ServiceName:
		switch method {
		case "Detokenize", "DetokenizeBatch", "DeleteToken", "Retokenize":
			return true
		}
	case pb.SigningService_ServiceDesc.ServiceName:
		return method == "Sign"
	case pb.AdminService_ServiceDesc.ServiceName, pb.ClusterService_ServiceDesc.ServiceName,
		pb.CeremonyService_ServiceDesc.ServiceName:
		return true
	}
	return false
}

// auditCall appends the entry of a finished call whose outcome is code and
// reason; it returns ErrAuditUnavailable when the log did not take it.
func (n *Node) auditCall(ctx context.Context, fullMethod string, c caller, ri *reqInfo, code codes.Code, reason string) error {
	e := audit.Entry{
		Time:     n.now(),
		Node:     n.id,
		Identity: c.identity,
		Method:   fullMethod,
		Code:     CodeName(code),
		Reason:   reason,
		Scheme:   ri.scheme,
		Key:      ri.key,
		Masked:   ri.masked,
		Items:    ri.items,
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if aerr := n.audit.Append(actx, e); aerr != nil {
		n.log.Error("audit append failed: call refused", "method", fullMethod, "err", aerr)
		return ErrAuditUnavailable
	}
	return nil
}
