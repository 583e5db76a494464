package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/panvault/panvault/keys"
	"github.com/panvault/panvault/raftstore"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/pki"
	"github.com/panvault/panvault/vault/scheme"
)

func TestStatusTable(t *testing.T) {
	luhn := &card.RuleError{Field: "pan", Rule: card.RuleLuhn, Description: "fails the luhn check", Err: card.ErrLuhn}
	cases := []struct {
		err    error
		code   codes.Code
		reason string
	}{
		{luhn, codes.InvalidArgument, "INVALID_LUHN"},
		{fmt.Errorf("%w: scheme \"x\" does not allow 15-digit numbers", scheme.ErrLengthNotAllowed), codes.FailedPrecondition, "PAN_LENGTH_NOT_ALLOWED"},
		{fmt.Errorf("wrap: %w", ErrSchemeNotFound), codes.NotFound, "SCHEME_NOT_FOUND"},
		{ErrTokenExpired, codes.NotFound, "TOKEN_EXPIRED"},
		{fmt.Errorf("%w: x", scheme.ErrNotToken), codes.NotFound, "TOKEN_NOT_FOUND"},
		{fmt.Errorf("%w: %w", ErrKeyUnavailable, keys.ErrMasterKeyMismatch), codes.FailedPrecondition, "MASTER_KEY_MISMATCH"},
		{fmt.Errorf("propose: %w", raftstore.ErrUnknownOutcome), codes.Unavailable, "OUTCOME_UNKNOWN"},
		{raftstore.ErrNoLeader, codes.Unavailable, "NO_LEADER"},
		{raftstore.ErrNotApplied, codes.Unavailable, "NOT_APPLIED"},
		{keys.ErrHSMUnavailable, codes.Unavailable, "HSM_UNAVAILABLE"},
		{pki.ErrUnknownIdentity, codes.PermissionDenied, "PERMISSION_DENIED"},
		{pki.ErrUnauthenticated, codes.Unauthenticated, "UNAUTHENTICATED"},
		{keys.ErrDecrypt, codes.DataLoss, "RECORD_CORRUPT"},
		{context.DeadlineExceeded, codes.DeadlineExceeded, ""},
		{errors.New("something nobody mapped"), codes.Internal, "INTERNAL"},
	}
	for _, tc := range cases {
		err := statusOf(tc.err)
		st, _ := status.FromError(err)
		if st.Code() != tc.code {
			t.Errorf("%v: code %v, want %v", tc.err, st.Code(), tc.code)
		}
		got := ""
		for _, d := range st.Details() {
			if ei, ok := d.(*errdetails.ErrorInfo); ok {
				got = ei.GetReason()
			}
		}
		if got != tc.reason {
			t.Errorf("%v: reason %q, want %q", tc.code, got, tc.reason)
		}
	}
	// Unmapped errors never reach the client's text.
	st, _ := status.FromError(statusOf(errors.New("leak 4111111111111111")))
	if st.Message() != "internal error" {
		t.Fatalf("unmapped error text reached the client (%d bytes)", len(st.Message()))
	}
	// The unknown-outcome message tells the client what to do.
	st, _ = status.FromError(statusOf(raftstore.ErrUnknownOutcome))
	if !strings.Contains(st.Message(), "retry with the same request_id") {
		t.Fatalf("unknown outcome text: %q", st.Message())
	}
	// Field violations ride along.
	st, _ = status.FromError(statusOf(luhn))
	var br *errdetails.BadRequest
	for _, d := range st.Details() {
		if b, ok := d.(*errdetails.BadRequest); ok {
			br = b
		}
	}
	if br == nil || len(br.GetFieldViolations()) != 1 || br.GetFieldViolations()[0].GetField() != "pan" || br.GetFieldViolations()[0].GetReason() != "LUHN" {
		t.Fatalf("bad request detail: %v", br)
	}
	if statusOf(nil) != nil {
		t.Fatal("nil error became a status")
	}
	// A peer's status wrapped by raftstore goes through the table: the
	// unknown outcome keeps its reason and advice, and the wrapped text (which
	// names internal addresses) does not reach the client.
	peerErr := status.Error(codes.Unavailable, "connection error: desc = dial tcp 10.1.2.3:7101: connection refused")
	st, _ = status.FromError(statusOf(fmt.Errorf("%w: forward to leader: %w", raftstore.ErrUnknownOutcome, peerErr)))
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "retry with the same request_id") || strings.Contains(st.Message(), "10.1.2.3") {
		t.Fatalf("wrapped unknown outcome: %v %q", st.Code(), st.Message())
	}
	st, _ = status.FromError(statusOf(fmt.Errorf("read index: %w", status.Error(codes.NotFound, "internal detail 10.1.2.3"))))
	if st.Code() != codes.NotFound || strings.Contains(st.Message(), "10.1.2.3") {
		t.Fatalf("wrapped status without a table entry: %v %q", st.Code(), st.Message())
	}
	// A status returned as such (a handler's own) passes through unchanged.
	st, _ = status.FromError(statusOf(status.Error(codes.ResourceExhausted, "oversized batch")))
	if st.Code() != codes.ResourceExhausted || st.Message() != "oversized batch" {
		t.Fatalf("direct status: %v %q", st.Code(), st.Message())
	}
}

func TestItemError(t *testing.T) {
	luhn := &card.RuleError{Field: "pan", Rule: card.RuleLuhn, Description: "fails the luhn check", Err: card.ErrLuhn}
	ie := itemErrorOf(luhn, 3)
	if codes.Code(ie.GetCode()) != codes.InvalidArgument || ie.GetReason() != "INVALID_LUHN" ||
		len(ie.GetFieldViolations()) != 1 || ie.GetFieldViolations()[0].GetField() != "items[3].pan" ||
		!strings.HasPrefix(ie.GetMessage(), "items[3].pan:") {
		t.Fatalf("item error: %v", ie)
	}
	ie = itemErrorOf(ErrTokenNotFound, 0)
	if codes.Code(ie.GetCode()) != codes.NotFound || len(ie.GetFieldViolations()) != 0 {
		t.Fatalf("not found item error: %v", ie)
	}
}

func TestMaskToken(t *testing.T) {
	cases := map[string]string{
		"4111114331851111":    "411111******1111",
		"12345":               "[len 5]",
		"4111 1111 1111 1111": "[len 19]",
		"":                    "[len 0]",
	}
	for in, want := range cases {
		if got := maskToken(in); got != want {
			t.Errorf("maskToken(len %d) = %q, want %q", len(in), got, want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"pan", "a", "pan-det_2", strings.Repeat("a", 63)} {
		if err := checkName("name", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Pan", "1pan", "-pan", "pan det", "pan/x", strings.Repeat("a", 64), "pän"} {
		err := checkName("name", bad)
		if !errors.Is(err, ErrInvalidArgument) || len(card.RuleErrors(err)) != 1 {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for _, bad := range []string{"a b", "tab\t", strings.Repeat("x", 129), "é"} {
		if checkRequestID("request_id", bad) == nil {
			t.Errorf("request id %q accepted", bad)
		}
	}
	if checkRequestID("request_id", "") != nil || checkRequestID("request_id", "9b2f-AZ_~!") != nil {
		t.Error("good request id refused")
	}
}
