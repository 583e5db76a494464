package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/panvault/panvault/vault"
	"github.com/panvault/panvault/vault/pki"
)

// Environment variables read by client and admin commands.
const (
	envAddr   = "PANVAULT_ADDR"
	envCACert = "PANVAULT_CACERT"
	envCert   = "PANVAULT_CERT"
	envKey    = "PANVAULT_KEY"
)

// clientFlags are the connection and output flags shared by every client command.
type clientFlags struct {
	addr, cacert, cert, key string
	output                  string
	timeout                 time.Duration
}

func (f *clientFlags) register(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringVar(&f.addr, "addr", "", "node address host:port, comma-separated for fail-over (default $"+envAddr+")")
	pf.StringVar(&f.cacert, "cacert", "", "CA certificate file (default $"+envCACert+")")
	pf.StringVar(&f.cert, "cert", "", "client certificate file (default $"+envCert+")")
	// Not --key: sign, verify, scheme create and ceremony change-scheme-key
	// name a vault key with --key, and a command's own flag would hide a
	// global one of the same name.
	pf.StringVar(&f.key, "tls-key", "", "client private key file (default $"+envKey+")")
	pf.StringVarP(&f.output, "output", "o", "text", `output format: "text" or "json"`)
	pf.DurationVar(&f.timeout, "timeout", 60*time.Second, "overall deadline of a client command, retries included")
}

func (f *clientFlags) json() bool { return f.output == "json" }

func (f *clientFlags) checkOutput() error {
	if f.output != "text" && f.output != "json" {
		return &usageError{fmt.Errorf(`--output: want "text" or "json", not %q`, f.output)}
	}
	return nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// connect resolves flags and environment into a client of the cluster.
func (f *clientFlags) connect() (*cluster, error) {
	if err := f.checkOutput(); err != nil {
		return nil, err
	}
	addr := firstNonEmpty(f.addr, os.Getenv(envAddr))
	ca := firstNonEmpty(f.cacert, os.Getenv(envCACert))
	cert := firstNonEmpty(f.cert, os.Getenv(envCert))
	key := firstNonEmpty(f.key, os.Getenv(envKey))
	for _, m := range []struct{ flag, env, val string }{
		{"--addr", envAddr, addr}, {"--cacert", envCACert, ca}, {"--cert", envCert, cert}, {"--tls-key", envKey, key},
	} {
		if m.val == "" {
			return nil, &usageError{fmt.Errorf("no %s: set %s or pass %s (`panvault dev` writes DIR/client.env)", m.flag, m.env, m.flag)}
		}
	}
	tlsConf, err := pki.LoadClientTLS(cert, key, ca)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, &usageError{fmt.Errorf("%s is empty", envAddr)}
	}
	c := &cluster{addrs: addrs, conns: make([]*grpc.ClientConn, len(addrs))}
	creds := credentials.NewTLS(tlsConf)
	for i, a := range addrs {
		cc, err := grpc.NewClient(a, grpc.WithTransportCredentials(creds))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("address %q: %w", a, err)
		}
		c.conns[i] = cc
	}
	return c, nil
}

// session connects and bounds the command's calls by --timeout (retries
// included). done closes the connections and releases the deadline.
func (f *clientFlags) session(ctx context.Context) (cl *cluster, cctx context.Context, done func(), err error) {
	cl, err = f.connect()
	if err != nil {
		return nil, nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, f.timeout)
	return cl, cctx, func() { cancel(); cl.Close() }, nil
}

// cluster is a client of one or more nodes with fail-over: a call that fails
// with UNAVAILABLE is retried on the next address. Not safe for concurrent use.
type cluster struct {
	addrs []string
	conns []*grpc.ClientConn
	cur   int
}

// Close closes every connection.
func (c *cluster) Close() {
	for _, cc := range c.conns {
		if cc != nil {
			cc.Close()
		}
	}
}

// retryPolicy says which failures a call may be retried on, and what to
// tell the user when a call ends with its outcome unknown.
//
// UNAVAILABLE is retried (the request did not reach a node that could act on
// it, or the node says retrying is safe), except with reason OUTCOME_UNKNOWN:
// then the write may have committed. That, and DEADLINE_EXCEEDED of one
// attempt, leave the outcome unknown: only an idempotent request is sent
// again. A request that is not idempotent returns the error instead, with
// the command that shows whether it took effect (checkWith) added to its
// message.
type retryPolicy struct {
	// idempotent: sending the request again cannot repeat its effect: a
	// read, a write carrying an idempotency key (request_id), or a create
	// that returns the identical existing object.
	idempotent bool
	// checkWith is the command line that shows whether a non-idempotent
	// request took effect ("" for none).
	checkWith string
}

// idempotent is the policy of requests that may always be sent again.
var idempotent = retryPolicy{idempotent: true}

// notIdempotent is the policy of a request that must not be sent twice;
// checkWith is the command that shows whether it took effect.
func notIdempotent(checkWith string) retryPolicy { return retryPolicy{checkWith: checkWith} }

// reasonOutcomeUnknown is the ErrorInfo reason of a write whose outcome the
// server does not know (leadership lost mid-flight): it may have committed.
const reasonOutcomeUnknown = "OUTCOME_UNKNOWN"

// outcomeUnknown reports whether a call that failed with err may still
// have been carried out by the server.
func outcomeUnknown(err error) bool {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Unavailable:
		_, reason := statusDetails(st)
		return reason == reasonOutcomeUnknown
	case codes.DeadlineExceeded, codes.Canceled:
		return true
	}
	return false
}

// retryable reports whether a call that failed with err may be sent again
// under rp (ctx is the command's overall context).
func (rp retryPolicy) retryable(ctx context.Context, err error) bool {
	switch status.Code(err) {
	case codes.Unavailable:
		return rp.idempotent || !outcomeUnknown(err)
	case codes.DeadlineExceeded:
		return rp.idempotent && ctx.Err() == nil
	}
	return false
}

// final returns the error a call ends with: for a request that is not
// idempotent and may have been carried out, the same status with a message
// that says so and names the command that shows whether it was.
func (rp retryPolicy) final(err error) error {
	if rp.idempotent || rp.checkWith == "" || !outcomeUnknown(err) {
		return err
	}
	st, _ := status.FromError(err)
	p := st.Proto()
	p.Message = fmt.Sprintf("%s; the outcome is unknown: it may have been carried out; check with `%s` before trying again",
		st.Message(), rp.checkWith)
	return status.FromProto(p).Err()
}

// perAttempt bounds one RPC attempt inside the command's overall deadline.
const perAttempt = 15 * time.Second

// call runs fn against the current node, moving to the next node and backing
// off while it fails with an error rp allows retrying, until ctx ends.
func (c *cluster) call(ctx context.Context, rp retryPolicy, fn func(ctx context.Context, cc *grpc.ClientConn) error) error {
	backoff := 100 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, perAttempt)
		err := fn(actx, c.conns[c.cur])
		cancel()
		if err == nil {
			return nil
		}
		if !rp.retryable(ctx, err) {
			return rp.final(err)
		}
		c.cur = (c.cur + 1) % len(c.conns)
		if c.cur == 0 || len(c.conns) == 1 {
			select {
			case <-ctx.Done():
				return rp.final(err)
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
		if ctx.Err() != nil {
			return rp.final(err)
		}
	}
}

// codeName returns a gRPC code as its canonical upper-snake name (INVALID_ARGUMENT).
func codeName(c codes.Code) string { return vault.CodeName(c) }

// errorJSON is how errors appear in --output json.
type errorJSON struct {
	Code            string          `json:"code"`
	Message         string          `json:"message"`
	Reason          string          `json:"reason,omitempty"`
	FieldViolations []violationJSON `json:"field_violations,omitempty"`
}

type violationJSON struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

// describeError turns an error into its code and message. gRPC errors keep
// their code; messages from the server never contain PANs. The CLI's own
// errors can quote what was typed (cobra's `unknown command "4111..."` for a
// PAN given where a subcommand or no argument belongs): their digit runs
// are masked.
func describeError(err error) errorJSON {
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		out := errorJSON{Code: codeName(st.Code()), Message: st.Message()}
		out.FieldViolations, out.Reason = statusDetails(st)
		return out
	}
	var ue *usageError
	if errors.As(err, &ue) {
		return errorJSON{Code: "USAGE", Message: maskPANs(err.Error())}
	}
	return errorJSON{Code: "ERROR", Message: maskPANs(err.Error())}
}

func (e errorJSON) String() string {
	var b strings.Builder
	b.WriteString(e.Code)
	b.WriteString(": ")
	b.WriteString(e.Message)
	if e.Reason != "" {
		fmt.Fprintf(&b, " (%s)", e.Reason)
	}
	for _, v := range e.FieldViolations {
		if fv := v.Field + ": " + v.Description; !strings.Contains(e.Message, fv) {
			fmt.Fprintf(&b, "; %s", fv)
		}
	}
	return b.String()
}

// reportError prints a command's error: "panvault: CODE: message" on stderr,
// and with --output json also {"error": {...}} on stdout.
func reportError(io *stdio, root *cobra.Command, err error) {
	d := describeError(err)
	if out, ferr := root.PersistentFlags().GetString("output"); ferr == nil && out == "json" {
		_ = writeJSON(io.out, map[string]any{"error": d})
	}
	if d.Code == "ERROR" || d.Code == "USAGE" {
		fmt.Fprintf(io.err, "panvault: %s\n", d.Message)
		return
	}
	fmt.Fprintf(io.err, "panvault: %s\n", d)
}
