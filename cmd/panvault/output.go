package main

import (
	"encoding/json"
	"fmt"
	"github.com/panvault/panvault/vault/card"
	"io"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// statusDetails extracts field violations (google.rpc.BadRequest) and a reason
// (google.rpc.ErrorInfo) from a status.
func statusDetails(st *status.Status) ([]violationJSON, string) {
	var vs []violationJSON
	reason := ""
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, fv := range d.GetFieldViolations() {
				vs = append(vs, violationJSON{Field: fv.GetField(), Description: fv.GetDescription()})
			}
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		}
	}
	return vs, reason
}

// itemError converts a batch item's error to the CLI's error form.
func itemError(e *pb.ItemError) errorJSON {
	out := errorJSON{Code: codeName(codes.Code(e.GetCode())), Message: e.GetMessage(), Reason: e.GetReason()}
	for _, fv := range e.GetFieldViolations() {
		out.FieldViolations = append(out.FieldViolations, violationJSON{Field: fv.GetField(), Description: fv.GetDescription()})
	}
	return out
}

// reportItem prints a failed item on stderr. Items are numbered from 1, as
// lines of input are; the item itself (a PAN or token) is never printed.
func reportItem(w io.Writer, n int, e errorJSON) {
	fmt.Fprintf(w, "panvault: item %d: %s\n", n, e)
}

// maskPANs replaces every PAN-like run in s (12 or more digits, possibly
// grouped by single spaces or dashes) by its digits masked as a PAN of that
// length would be (card.MaskPANLikeRuns).
func maskPANs(s string) string { return card.MaskPANLikeRuns(s) }

// enumName strips an enum value's type prefix: CARD_BRAND_VISA -> VISA.
func enumName(full, prefix string) string {
	if len(full) > len(prefix) && full[:len(prefix)] == prefix {
		return full[len(prefix):]
	}
	return full
}
