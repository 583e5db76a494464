package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/pki"
)

// caller is the authenticated, authorized identity of a call.
type caller struct {
	identity string
	roles    pki.Role
}

// reqInfo collects what a handler adds to the call's log line: masked forms
// only.
type reqInfo struct {
	scheme string
	key    string // key name (signing)
	masked string // masked PAN or token
	items  int
}

type callerKey struct{}
type reqInfoKey struct{}

func callerFrom(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

func infoFrom(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{} // a throwaway, for calls made without the edge
}

// allowedRoles is the role table: which roles may call each method. A
// method not listed here is denied. anyRole means any verified client
// certificate (health checks).
const anyRole pki.Role = 0

func allowedRoles(fullMethod string) (pki.Role, bool) {
	svc, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	switch svc {
	case pb.TokenService_ServiceDesc.ServiceName, pb.SigningService_ServiceDesc.ServiceName:
		return pki.RoleClient | pki.RoleAdmin, true
	case pb.AdminService_ServiceDesc.ServiceName:
		return pki.RoleAdmin, true
	case pb.CeremonyService_ServiceDesc.ServiceName:
		switch method {
		case "InitCustodians", "Propose", "StartReencrypt", "StageMasterKey", "DestroyOldMasterKey":
			return pki.RoleAdmin, true
		}
		// Votes carry the custodian's signature, which is the authority;
		// reads show nothing secret. Any known client or admin may call.
		return pki.RoleAdmin | pki.RoleClient, true
	case pb.ClusterService_ServiceDesc.ServiceName:
		switch method {
		case "Status", "Join": // Join by a node is limited to itself (clusterService.Join)
			return pki.RoleAdmin | pki.RoleNode, true
		}
		return pki.RoleAdmin, true
	case "grpc.health.v1.Health":
		return anyRole, true
	case "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection":
		return pki.RoleAdmin | pki.RoleClient | pki.RoleNode, true
	}
	return 0, false
}

// authorize resolves the caller of ctx and checks the role table.
func (n *Node) authorize(ctx context.Context, fullMethod string) (caller, error) {
	allowed, known := allowedRoles(fullMethod)
	if !known {
		return caller{}, pki.ErrPermissionDenied
	}
	if allowed == anyRole {
		id, err := pki.PeerIdentity(ctx)
		return caller{identity: id}, err
	}
	id, roles, err := n.authz.AuthorizePeer(ctx, allowed)
	return caller{identity: id, roles: roles}, err
}

// capDeadline bounds ctx by MaxRequestTimeout, or DefaultRequestTimeout
// when the client set no deadline.
func capDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	switch {
	case !ok:
		return context.WithTimeout(ctx, DefaultRequestTimeout)
	case time.Until(dl) > MaxRequestTimeout:
		return context.WithTimeout(ctx, MaxRequestTimeout)
	}
	return ctx, func() {}
}

// unaryEdge is the outer interceptor of every unary call: deadline cap,
// authorization, unknown-field refusal, error mapping, and the call's log
// line.
func (n *Node) unaryEdge(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	ctx, cancel := capDeadline(ctx)
	defer cancel()
	ri := &reqInfo{}
	ctx = context.WithValue(ctx, reqInfoKey{}, ri)
	c, err := n.authorize(ctx, info.FullMethod)
	if err == nil {
		ctx = context.WithValue(ctx, callerKey{}, c)
		err = checkUnknownFields(info.FullMethod, req)
	}
	if err == nil {
		resp, err = handler(ctx, req)
	}
	err, code, reason := mapError(err)
	if n.audit != nil && auditedMethod(info.FullMethod) {
		if aerr := n.auditCall(ctx, info.FullMethod, c, ri, code, reason); aerr != nil {
			err = statusOf(aerr) // the answer does not leave unaudited
		}
	}
	n.logCall(ctx, info.FullMethod, c, ri, err, start)
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// streamEdge authorizes streaming calls (health watch, reflection).
func (n *Node) streamEdge(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	c, err := n.authorize(ss.Context(), info.FullMethod)
	if err == nil {
		err = handler(srv, ss)
	}
	err = statusOf(err)
	n.logCall(ss.Context(), info.FullMethod, c, &reqInfo{}, err, start)
	return err
}

// logCall writes the call's debug line (and a warning for server faults).
// Never a PAN or token in clear: reqInfo holds masked forms only.
func (n *Node) logCall(ctx context.Context, method string, c caller, ri *reqInfo, err error, start time.Time) {
	code := status.Code(err)
	level := slog.LevelDebug
	if code == codes.Internal || code == codes.DataLoss || code == codes.Unknown {
		level = slog.LevelWarn
	}
	if !n.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("identity", c.identity),
		slog.String("code", code.String()),
		slog.Duration("elapsed", time.Since(start)),
	}
	if ri.scheme != "" {
		attrs = append(attrs, slog.String("scheme", ri.scheme))
	}
	if ri.masked != "" {
		attrs = append(attrs, slog.String("masked", ri.masked))
	}
	if ri.items > 0 {
		attrs = append(attrs, slog.Int("items", ri.items))
	}
	n.log.LogAttrs(ctx, level, "grpc call", attrs...)
}

// recovered turns a handler panic into INTERNAL. Neither the log line nor
// the status carries the panic value (it could hold request data), and the
// log shows where it happened as function and file:line only: a full
// runtime stack (debug.Stack) prints every frame's arguments, and a
// card.PAN passed by value there would put its digits in the log.
func (n *Node) recovered(ctx context.Context, p any) error {
	n.log.Error("handler panicked", "panic_type", typeName(p), "frames", panicFrames(3))
	return statusOf(errHandlerPanic)
}

// errHandlerPanic is what a client sees of a handler panic (status.go).
var errHandlerPanic = errors.New("handler panicked")

// panicFrames lists the calling goroutine's frames above skip as
// "function file:line", without argument values.
func panicFrames(skip int) []string {
	pcs := make([]uintptr, 64)
	pcs = pcs[:runtime.Callers(skip, pcs)]
	frames := runtime.CallersFrames(pcs)
	var out []string
	for {
		f, more := frames.Next()
		out = append(out, fmt.Sprintf("%s %s:%d", f.Function, f.File, f.Line))
		if !more {
			return out
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case error:
		return "error"
	case string:
		return "string"
	}
	return "other"
}

// errUnknownFields refuses requests that carry fields this server does not
// know, so card data sent where the API has no field for it (a CVV in a
// newer client's message) is refused rather than silently dropped.
var errUnknownFields = errors.New("request carries fields this server does not know; card security codes and other unmodelled data are refused")

// checkUnknownFields applies errUnknownFields to TokenService requests.
func checkUnknownFields(fullMethod string, req any) error {
	if !strings.HasPrefix(fullMethod, "/"+pb.TokenService_ServiceDesc.ServiceName+"/") {
		return nil
	}
	m, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	if hasUnknown(m.ProtoReflect()) {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, errUnknownFields)
	}
	return nil
}

// hasUnknown reports whether m or any message inside it has unknown fields.
func hasUnknown(m protoreflect.Message) bool {
	if len(m.GetUnknown()) > 0 {
		return true
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && !found; i++ {
				found = hasUnknown(l.Get(i).Message())
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					found = hasUnknown(mv.Message())
					return !found
				})
			}
		default:
			found = hasUnknown(v.Message())
		}
		return !found
	})
	return found
}
