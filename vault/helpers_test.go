package vault_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/vaulttest"
)

// ctxT returns a context that ends with the test (or after a minute).
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// devCluster starts a 3-node cluster with the dev keys and schemes.
func devCluster(t testing.TB) *vaulttest.Cluster {
	t.Helper()
	c := vaulttest.StartCluster(t, 3)
	c.Setup(t)
	return c
}

// testPAN returns a Luhn-valid PAN of length digits: prefix, then seq
// zero-padded, then the check digit.
func testPAN(t testing.TB, prefix string, length, seq int) string {
	t.Helper()
	body := fmt.Sprintf("%s%0*d", prefix, length-1-len(prefix), seq)
	if len(body) != length-1 {
		t.Fatalf("testPAN: seq %d does not fit %d digits after prefix %s", seq, length, prefix)
	}
	cd, err := card.LuhnCheckDigit(body)
	if err != nil {
		t.Fatalf("testPAN: %v", err)
	}
	return body + string(cd)
}

// wantCode fails the test unless err has code want.
func wantCode(t testing.TB, err error, want codes.Code, what string) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("%s: code %v, want %v (%v)", what, got, want, err)
	}
}

// violations returns the BadRequest field violations of a status error.
func violations(err error) []*errdetails.BadRequest_FieldViolation {
	st, _ := status.FromError(err)
	var out []*errdetails.BadRequest_FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			out = append(out, br.GetFieldViolations()...)
		}
	}
	return out
}

// reason returns the ErrorInfo reason of a status error.
func reason(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

// noSecret fails the test if text contains any of secrets (PANs). The
// failure message names the secret's index, never the secret.
func noSecret(t testing.TB, what, text string, secrets ...string) {
	t.Helper()
	for i, s := range secrets {
		if len(s) >= 6 && strings.Contains(text, s) {
			t.Fatalf("%s contains secret #%d in clear", what, i)
		}
	}
}

// masked returns the test's expectation of a masked 16+ digit PAN.
func masked(pan string) string {
	return pan[:6] + strings.Repeat("*", len(pan)-10) + pan[len(pan)-4:]
}

// unknownToken returns a well-formed token of the dev vaulted schemes (6+4
// kept, failing Luhn) that was never issued.
func unknownToken(t testing.TB, seq int) string {
	t.Helper()
	p := testPAN(t, "411111", 16, 900000+seq)
	last := (p[15]-'0'+1)%10 + '0'
	return p[:15] + string(last)
}
