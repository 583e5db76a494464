package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// outcomeUnknownStatus is the status a node returns for a write whose
// outcome it does not know.
func outcomeUnknownStatus(t *testing.T) error {
	t.Helper()
	st, err := status.New(codes.Unavailable, "outcome unknown").WithDetails(&errdetails.ErrorInfo{Reason: reasonOutcomeUnknown, Domain: "panvault"})
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

// A request that is not idempotent and ends with its outcome unknown
// (OUTCOME_UNKNOWN, or a deadline) is not sent again (it may have been
// carried out: a retry could repeat it), and its error keeps its code and
// names the command that shows whether it was; an idempotent one is sent
// again; a plain UNAVAILABLE is retried either way.
func TestCallRetriesOutcomeUnknownOnlyWhenIdempotent(t *testing.T) {
	unknown := outcomeUnknownStatus(t)
	plain := status.Error(codes.Unavailable, "no leader")
	deadline := status.Error(codes.DeadlineExceeded, "slow")
	once := notIdempotent("panvault cluster status")
	for _, tc := range []struct {
		name      string
		rp        retryPolicy
		first     error
		wantCalls int
		wantCode  codes.Code
		wantHint  bool
	}{
		{"non-idempotent outcome unknown", once, unknown, 1, codes.Unavailable, true},
		{"idempotent outcome unknown", idempotent, unknown, 2, codes.OK, false},
		{"non-idempotent plain unavailable", once, plain, 2, codes.OK, false},
		{"non-idempotent deadline", once, deadline, 1, codes.DeadlineExceeded, true},
		{"idempotent deadline", idempotent, deadline, 2, codes.OK, false},
		{"non-idempotent refusal", once, status.Error(codes.InvalidArgument, "bad"), 1, codes.InvalidArgument, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cluster{addrs: []string{"a"}, conns: []*grpc.ClientConn{nil}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			calls := 0
			err := c.call(ctx, tc.rp, func(context.Context, *grpc.ClientConn) error {
				calls++
				if calls == 1 {
					return tc.first
				}
				return nil
			})
			if calls != tc.wantCalls || status.Code(err) != tc.wantCode {
				t.Fatalf("%d calls, code %v; want %d calls, code %v", calls, status.Code(err), tc.wantCalls, tc.wantCode)
			}
			if hint := strings.Contains(status.Convert(err).Message(), "check with `panvault cluster status`"); hint != tc.wantHint {
				t.Fatalf("error %q: names the check command: %v, want %v", err, hint, tc.wantHint)
			}
			if tc.wantHint {
				if _, reason := statusDetails(status.Convert(err)); tc.first == unknown && reason != reasonOutcomeUnknown {
					t.Fatalf("error %q lost its reason (%q)", err, reason)
				}
			}
		})
	}
}

// A PAN typed where the CLI does not expect one comes back masked in the
// error (cobra quotes unknown commands and extra arguments).
func TestCLIErrorsMaskPANs(t *testing.T) {
	const pan = "4111111111111111"
	for _, args := range [][]string{
		{pan},
		{"scheme", "list", pan},
		{"scheme", pan},
		{"scheme", "list", "4111 1111 1111 1111"},
		{"cluster", "status", "-o", "json", "4111-1111-1111-1111"},
	} {
		code, out, stderr := runCLI(t, "", args...)
		if strings.Contains(out+stderr, "1111111111") || strings.Contains(out+stderr, "1111 1111 1111") ||
			strings.Contains(out+stderr, "1111-1111-1111") {
			t.Errorf("args %d: a PAN was echoed", len(args)) // never the output that holds it
			continue
		}
		if code != 2 || !strings.Contains(stderr, "unknown command") || !strings.Contains(out+stderr, "411111******1111") {
			t.Errorf("args %d: exit %d, stdout %q, stderr %q; want exit 2 (a usage error) and the masked PAN", len(args), code, out, stderr)
		}
	}
	for in, want := range map[string]string{
		"seq 12345678901 is short":            "seq 12345678901 is short",
		"5500000000000004 and 37828224631000": "550000******0004 and 37828*****1000",
		"6011 0009 9013 9424":                 "601100******9424",
		"4000-0000-0000-0002-123":             "400000*********2123",
	} {
		if got := maskPANs(in); got != want {
			t.Errorf("maskPANs(%q) = %q, want %q", in, got, want)
		}
	}
}

// Command-line mistakes exit 2, as docs/cli.md says, and name what is wrong
// (TestAuditVerifyCommandUsage checks that an error of the work itself exits 1).
func TestUsageErrorsExitTwo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"cluster", "frob"}, `unknown command "frob" for "panvault cluster"`},
		{[]string{"audit", "frob"}, "unknown command"},
		{[]string{"sign", "--key", "payments-p256"}, "arg"},
		{[]string{"sign", "a.xml"}, `required flag(s) "key" not set`},
		{[]string{"verify", "--key", "k", "a.xml"}, "arg"},
		{[]string{"cluster", "remove"}, "arg"},
		{[]string{"scheme", "list", "--bogus"}, "unknown flag"},
	} {
		code, out, stderr := runCLI(t, "", tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, stderr, tc.want)
		}
	}
}
