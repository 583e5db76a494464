package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// auditCall appends the entry of a finished call whose (mapped) error is
// err; it returns ErrAuditUnavailable when the log did not take it.
func (n *Node) auditCall(ctx context.Context, fullMethod string, c caller, ri *reqInfo, err error) error {
	st := status.Convert(err)
	e := audit.Entry{
		Time:     n.now(),
		Node:     n.id,
		Identity: c.identity,
		Method:   fullMethod,
		Code:     codeName(st.Code()),
		Reason:   statusReason(st),
		Scheme:   ri.scheme,
		Key:      ri.key,
		Masked:   ri.masked,
		Items:    ri.items,
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if aerr := n.audit.Append(actx, e); aerr != nil {
		n.log.Error("audit append failed: call refused", "method", fullMethod, "err", aerr)
		return fmt.Errorf("%w", ErrAuditUnavailable)
	}
	return nil
}

// codeName is the canonical upper-case name of a gRPC code ("NOT_FOUND").
func codeName(c codes.Code) string {
	var b strings.Builder
	prevLower := false
	for _, r := range c.String() {
		upper := r >= 'A' && r <= 'Z'
		if upper && prevLower {
			b.WriteByte('_')
		}
		prevLower = !upper
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// statusReason is the panvault reason in st's ErrorInfo, if any.
func statusReason(st *status.Status) string {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}
