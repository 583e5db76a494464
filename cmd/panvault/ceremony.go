package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/ceremony"
)

func newCeremonyCmd(io *stdio, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ceremony",
		Short: "Key-management ceremonies: propose, approve or reject (M of N custodians), list, show",
		Long: `Creating, rotating, retiring and destroying keys, pointing a scheme at another
key, changing the custodians or the quorum and replacing the master key are
ceremonies: a proposal that M of the N registered custodians approve, each by
signing it with their own key. The vault carries it out once the M-th valid
approval arrives.

"approve" and "reject" fetch the proposal's canonical bytes, decode them
locally, print what the proposal does in plain words with the transcript hash
computed here (never one sent by the server), ask for confirmation, then sign
with --custodian-key.`,
	}
	cmd.AddCommand(newProposeCmd(io, cf), newVoteCmd(io, cf, false), newVoteCmd(io, cf, true),
		newCeremonyListCmd(io, cf), newCeremonyShowCmd(io, cf), newCeremonyLogCmd(io, cf), newCeremonyAuditCmd(io, cf))
	return cmd
}

// proposeKinds lists `ceremony propose KIND`: name, aliases, arguments,
// summary, and a builder that reads the subcommand's flags.
func newProposeCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "propose KIND ...",
		Short: "Propose a ceremony (admin): " + kindList(),
		Long: `Propose a ceremony. The vault sets the proposer (your identity, or your
custodian name when your certificate names a registered custodian, who then
cannot approve it), the time, the expiry (--ttl, default 72h) and a random
nonce, checks the proposal against its keys and schemes, and prints it with
its id. Custodians then approve it with "panvault ceremony approve ID".`,
	}
	cmd.PersistentFlags().DurationVar(&ttl, "ttl", 0, "how long custodians may approve (1m to 720h; default 72h)")
	propose := func(c *cobra.Command, params *pb.CeremonyParams) error {
		req := &pb.ProposeRequest{Params: params}
		if ttl > 0 {
			req.Ttl = durationpb.New(ttl)
		}
		return runPropose(c, io, cf, req)
	}

	var typ, purpose, period string
	createKey := &cobra.Command{
		Use:   "create-key NAME --type TYPE --purpose PURPOSE [--cryptoperiod 365d]",
		Short: "Create a working key (version 1) inside the HSM",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			t, p, cp, err := parseKeySpec(typ, purpose, period)
			if err != nil {
				return err
			}
			ck := &pb.CreateKeyParams{Name: args[0], Type: t, Purpose: p, Cryptoperiod: cp}
			return propose(c, &pb.CeremonyParams{Params: &pb.CeremonyParams_CreateKey{CreateKey: ck}})
		},
	}
	createKey.Flags().StringVar(&typ, "type", "", "key type: aes256, hmac-sha256, ecdsa-p256, ecdsa-p384, rsa-3072, ed25519")
	createKey.Flags().StringVar(&purpose, "purpose", "", "key purpose: pan-encryption, fpe, fingerprint, signing")
	createKey.Flags().StringVar(&period, "cryptoperiod", "", "how long each version may encrypt or sign, e.g. 365d or 8760h (default: 365d, 730d for signing keys)")
	_ = createKey.MarkFlagRequired("type")
	_ = createKey.MarkFlagRequired("purpose")

	rotate := &cobra.Command{
		Use:   "rotate-key NAME",
		Short: "Add a new version to a key; it encrypts and signs from then on",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return propose(c, &pb.CeremonyParams{Params: &pb.CeremonyParams_RotateKey{RotateKey: &pb.RotateKeyParams{Name: args[0]}}})
		},
	}

	var minVersion uint32
	setMin := &cobra.Command{
		Use:     "set-min-decryption-version NAME --version V",
		Aliases: []string{"set-min-version"},
		Short:   "Retire every version of a key below V (they no longer decrypt or verify)",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return propose(c, &pb.CeremonyParams{Params: &pb.CeremonyParams_SetMinDecryptionVersion{
				SetMinDecryptionVersion: &pb.SetMinDecryptionVersionParams{Name: args[0], Version: minVersion}}})
		},
	}
	setMin.Flags().Uint32Var(&minVersion, "version", 0, "the new minimum decryption version")
	_ = setMin.MarkFlagRequired("version")

	var destroyVersion uint32
	destroy := &cobra.Command{
		Use:   "destroy-version NAME --version V",
		Short: "Destroy one retired version of a key (irreversible)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return propose(c, &pb.CeremonyParams{Params: &pb.CeremonyParams_DestroyVersion{
				DestroyVersion: &pb.DestroyVersionParams{Name: args[0], Version: destroyVersion}}})
		},
	}
	destroy.Flags().Uint32Var(&destroyVersion, "version", 0, "the retired version to destroy")
	_ = destroy.MarkFlagRequired("version")

	var schemeKey string
	changeScheme := &cobra.Command{
		Use:   "change-scheme-key SCHEME --key KEY",
		Short: "Point a token scheme at another key",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return propose(c, &pb.CeremonyParams{Params: &pb.CeremonyParams_ChangeSchemeKey{
				ChangeSchemeKey: &pb.ChangeSchemeKeyParams{Scheme: args[0], Key: schemeKey}}})
		},
	}
	changeScheme.Flags().StringVar(&schemeKey, "key", "", "the key the scheme uses from then on")
	_ = changeScheme.MarkFlagRequired("key")

	addCustodian := &cobra.Command{
		Use:   "add-custodian REGISTRATION-FILE",
		Short: "Register a custodian from their signed registration (custodian register --out FILE)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			reg, err := readRegistration(args[0])
			if err != nil {
				return err
			}
			return propose(c, &pb.CeremonyParams{Params: &pb.CeremonyParams_AddCustodian{
				AddCustodian: &pb.AddCustodianParams{Custodian: reg}}})
		},
	}

	removeCustodian := &cobra.Command{
		Use:   "remove-custodian NAME",
		Short: "Unregister a custodian (their approvals of open proposals stop counting)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return propose(c, &pb.CeremonyParams{Params: &pb.CeremonyParams_RemoveCustodian{
				RemoveCustodian: &pb.RemoveCustodianParams{Name: args[0]}}})
		},
	}

	changeQuorum := &cobra.Command{
		Use:   "change-quorum M",
		Short: "Change the number of approvals every ceremony needs",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			m, err := strconv.ParseUint(args[0], 10, 32)
			if err != nil {
				return &usageError{fmt.Errorf("quorum %q: want a number", args[0])}
			}
			return propose(c, &pb.CeremonyParams{Params: &pb.CeremonyParams_ChangeQuorum{
				ChangeQuorum: &pb.ChangeQuorumParams{Quorum: uint32(m)}}})
		},
	}

	var masterKCV string
	var componentKCVs []string
	rotateMK := &cobra.Command{
		Use:   "rotate-master-key --master-kcv KCV --component-kcv KCV...",
		Short: "Replace the master key by one made from new components (staged on every node first)",
		Long: `Propose replacing the master key by the one made from new components (made
with "panvault mk components"), named by its KCV and its components' KCVs in
custodian order. Every voting node must have staged it before the ceremony
can be carried out; custodians approve the KCVs they were handed.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return propose(c, &pb.CeremonyParams{Params: &pb.CeremonyParams_RotateMasterKey{
				RotateMasterKey: &pb.RotateMasterKeyParams{MasterKcv: strings.ToUpper(masterKCV), ComponentKcvs: upper(componentKCVs)}}})
		},
	}
	rotateMK.Flags().StringVar(&masterKCV, "master-kcv", "", "KCV of the new master key (6 hex digits)")
	rotateMK.Flags().StringArrayVar(&componentKCVs, "component-kcv", nil, "KCV of each component, in custodian order (repeat)")
	_ = rotateMK.MarkFlagRequired("master-kcv")
	_ = rotateMK.MarkFlagRequired("component-kcv")

	cmd.AddCommand(createKey, rotate, setMin, destroy, changeScheme, addCustodian, removeCustodian, changeQuorum, rotateMK)
	return cmd
}

func kindList() string {
	var names []string
	for k := ceremony.Kind(1); k.Valid(); k++ {
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}

func upper(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToUpper(s)
	}
	return out
}

// parsePeriod parses a Go duration or a whole number of days ("365d").
func parsePeriod(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil || days == 0 {
			return 0, fmt.Errorf("%q: want a positive number of days, like 365d", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration, like 365d or 8760h", s)
	}
	return d, nil
}

// runPropose sends a proposal and prints the ceremony. Not retried when its
// outcome is unknown: a second proposal would be another ceremony.
func runPropose(c *cobra.Command, io *stdio, cf *clientFlags, req *pb.ProposeRequest) error {
	var resp *pb.ProposeResponse
	if err := adminCall(c, cf, notIdempotent("panvault ceremony list --status pending"), func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = pb.NewCeremonyServiceClient(cc).Propose(ctx, req)
		return err
	}); err != nil {
		return err
	}
	cer := resp.GetCeremony()
	p, err := verifiedProposal(cer)
	if err != nil {
		return err
	}
	if cf.json() {
		return writeProtoJSON(io.out, resp)
	}
	if err := printCeremony(io.out, cer, p); err != nil {
		return err
	}
	fmt.Fprintf(io.out, "\nCustodians approve with: panvault ceremony approve %s --custodian-key FILE|pkcs11-uri\n", cer.GetId())
	return nil
}

// errProposalMismatch: the server's ceremony does not match the id or hash
// computed from its own canonical bytes.
var errProposalMismatch = errors.New("the server's proposal does not match its id")

// verifiedProposal decodes the ceremony's canonical proposal bytes and
// checks that they give the ceremony's id and transcript hash. Everything
// shown to a custodian comes from these bytes.
func verifiedProposal(cer *pb.Ceremony) (ceremony.Proposal, error) {
	p, err := ceremony.ParseProposal(cer.GetProposal())
	if err != nil {
		return p, fmt.Errorf("ceremony %s: cannot decode its proposal: %w", cer.GetId(), err)
	}
	h, err := p.Transcript()
	if err != nil {
		return p, err
	}
	if h.ID() != cer.GetId() {
		return p, fmt.Errorf("%w: ceremony %s carries a proposal whose transcript gives id %s; refusing it", errProposalMismatch, cer.GetId(), h.ID())
	}
	if th := cer.GetTranscriptHash(); th != "" && !strings.EqualFold(th, h.String()) {
		return p, fmt.Errorf("%w: ceremony %s: server says transcript hash %s, the proposal's bytes give %s; refusing it", errProposalMismatch, cer.GetId(), th, h)
	}
	if int(cer.GetKind()) != int(p.Kind()) {
		return p, fmt.Errorf("%w: ceremony %s: server says kind %s, the proposal is %s", errProposalMismatch, cer.GetId(), cer.GetKind(), p.Kind())
	}
	return p, nil
}

// statusName shows a ceremony status the way flags spell it.
func statusName(s pb.CeremonyStatus) string { return flagName(s.String(), "CEREMONY_STATUS_") }

// printCeremony prints the locally decoded proposal (ceremony.Describe,
// with the transcript hash computed here), then its status and votes.
func printCeremony(w io.Writer, cer *pb.Ceremony, p ceremony.Proposal) error {
	desc, err := ceremony.Describe(p)
	if err != nil {
		return err
	}
	fmt.Fprint(w, desc)
	fmt.Fprintf(w, "Status: %s, %d of %d approvals\n", statusName(cer.GetStatus()), cer.GetValidApprovals(), cer.GetQuorum())
	for _, a := range cer.GetApprovals() {
		note := ""
		if !a.GetCounts() {
			note = " (no longer counts)"
		}
		fmt.Fprintf(w, "  approved by %s at %s, key %s%s\n", a.GetCustodian(), plainTime(a.GetTime()), a.GetKeyFingerprint(), note)
	}
	for _, r := range cer.GetRejections() {
		fmt.Fprintf(w, "  rejected by %s at %s, key %s: %q\n", r.GetCustodian(), plainTime(r.GetTime()), r.GetKeyFingerprint(), r.GetReason())
	}
	if o := cer.GetOutcome(); o != "" {
		fmt.Fprintf(w, "Outcome: %s (closed %s)\n", o, plainTime(cer.GetCloseTime()))
	}
	return nil
}

func getCeremony(ctx context.Context, cl *cluster, id string) (*pb.Ceremony, error) {
	var resp *pb.GetCeremonyResponse
	err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = pb.NewCeremonyServiceClient(cc).GetCeremony(ctx, &pb.GetCeremonyRequest{Id: id})
		return err
	})
	return resp.GetCeremony(), err
}

func checkIDArg(id string) error {
	if err := ceremony.CheckID(id); err != nil {
		return &usageError{fmt.Errorf("ceremony id %q: want the 16 lower-case hex digits of a proposal id", id)}
	}
	return nil
}

// newVoteCmd makes `ceremony approve` or, with reject, `ceremony reject`.
func newVoteCmd(io *stdio, cf *clientFlags, reject bool) *cobra.Command {
	var kf custodianKeyFlags
	var name, reason string
	var yes bool
	use, short := "approve ID --custodian-key FILE|pkcs11-uri [--yes]", "Approve a ceremony with your custodian key (shows it in plain words first)"
	if reject {
		use, short = "reject ID --custodian-key FILE|pkcs11-uri [--reason TEXT] [--yes]", "Reject a ceremony with your custodian key (the proposer's rejection withdraws it)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return runVote(c, io, cf, &kf, args[0], name, yes, reject, reason)
		},
	}
	kf.register(cmd)
	cmd.Flags().StringVar(&name, "custodian", "", "your custodian name (default: found by your key in the registry)")
	cmd.Flags().BoolVar(&yes, "yes", false, "sign without asking (you have read the proposal)")
	if reject {
		cmd.Flags().StringVar(&reason, "reason", "", "why (printable ASCII, at most 256 characters; signed with the rejection)")
	}
	return cmd
}

func runVote(c *cobra.Command, io *stdio, cf *clientFlags, kf *custodianKeyFlags, id, name string, yes, reject bool, reason string) error {
	if err := checkIDArg(id); err != nil {
		return err
	}
	k, err := kf.open(c.Context())
	if err != nil {
		return err
	}
	defer k.Close()
	fp, err := k.Fingerprint()
	if err != nil {
		return err
	}
	cl, ctx, done, err := cf.session(c.Context())
	if err != nil {
		return err
	}
	defer done()

	var reg *pb.ListCustodiansResponse
	if err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		reg, err = pb.NewCeremonyServiceClient(cc).ListCustodians(ctx, &pb.ListCustodiansRequest{})
		return err
	}); err != nil {
		return err
	}
	registered := custodianByKey(reg, fp)
	if name == "" {
		name = registered
	}
	cer, err := getCeremony(ctx, cl, id)
	if err != nil {
		return err
	}
	p, err := verifiedProposal(cer)
	if err != nil {
		return err
	}
	w := io.out
	if cf.json() {
		w = io.err
	}
	if err := printCeremony(w, cer, p); err != nil {
		return err
	}
	fmt.Fprintln(w)
	switch {
	case registered != "" && registered == name:
		fmt.Fprintf(w, "Signing as custodian %s with key %s (%s).\n", name, fp, k.where)
	case registered != "":
		fmt.Fprintf(w, "Signing as %q with key %s, which is registered to custodian %s.\n", name, fp, registered)
	default:
		fmt.Fprintf(w, "WARNING: key %s (%s) is not a registered custodian's key; the vault will refuse the signature.\n", fp, k.where)
	}
	if cer.GetStatus() != pb.CeremonyStatus_CEREMONY_STATUS_PENDING {
		return fmt.Errorf("ceremony %s is %s: it takes no more votes; nothing was signed", id, statusName(cer.GetStatus()))
	}
	verb := "APPROVE"
	if reject {
		verb = "REJECT"
	}
	if err := confirm(io, yes, fmt.Sprintf("%s proposal %s?", verb, id)); err != nil {
		return err
	}

	var after *pb.Ceremony
	if reject {
		r, err := ceremony.SignRejection(k, name, p, reason)
		if err != nil {
			return err
		}
		req := &pb.RejectRequest{Id: id, Custodian: name, KeyFingerprint: r.Key[:], Reason: reason, Signature: r.Signature}
		var resp *pb.RejectResponse
		if err := cl.call(ctx, notIdempotent("panvault ceremony show "+id), func(ctx context.Context, cc *grpc.ClientConn) (err error) {
			resp, err = pb.NewCeremonyServiceClient(cc).Reject(ctx, req)
			return err
		}); err != nil {
			return err
		}
		if cf.json() {
			return writeProtoJSON(io.out, resp)
		}
		after = resp.GetCeremony()
	} else {
		a, err := ceremony.SignApproval(k, name, p)
		if err != nil {
			return err
		}
		req := &pb.ApproveRequest{Id: id, Custodian: name, KeyFingerprint: a.Key[:], Signature: a.Signature}
		var resp *pb.ApproveResponse
		if err := cl.call(ctx, notIdempotent("panvault ceremony show "+id), func(ctx context.Context, cc *grpc.ClientConn) (err error) {
			resp, err = pb.NewCeremonyServiceClient(cc).Approve(ctx, req)
			return err
		}); err != nil {
			return err
		}
		if cf.json() {
			if err := writeProtoJSON(io.out, resp); err != nil {
				return err
			}
			if resp.GetCeremony().GetStatus() == pb.CeremonyStatus_CEREMONY_STATUS_FAILED {
				return &exitError{code: 1}
			}
			return nil
		}
		after = resp.GetCeremony()
	}
	who := name
	if who == "" {
		who = "key " + fp.Short()
	}
	noun := "approval"
	if reject {
		noun = "rejection"
	}
	switch after.GetStatus() {
	case pb.CeremonyStatus_CEREMONY_STATUS_PENDING:
		fmt.Fprintf(io.out, "%s by %s recorded: %d of %d approvals; ceremony %s stays pending\n",
			noun, who, after.GetValidApprovals(), after.GetQuorum(), id)
	case pb.CeremonyStatus_CEREMONY_STATUS_EXECUTED:
		fmt.Fprintf(io.out, "approval by %s recorded: quorum reached (%d of %d); ceremony %s executed: %s\n",
			who, after.GetValidApprovals(), after.GetQuorum(), id, after.GetOutcome())
	case pb.CeremonyStatus_CEREMONY_STATUS_FAILED:
		fmt.Fprintf(io.out, "approval by %s recorded: quorum reached, but ceremony %s FAILED: %s\n", who, id, after.GetOutcome())
		return &exitError{code: 1}
	default:
		fmt.Fprintf(io.out, "%s by %s recorded; ceremony %s is %s: %s\n", noun, who, id, statusName(after.GetStatus()), after.GetOutcome())
	}
	return nil
}

func newCeremonyListCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var statusFlag string
	cmd := &cobra.Command{
		Use:   "list [--status pending|executed|failed|rejected|expired]",
		Short: "List ceremonies, newest first",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var st pb.CeremonyStatus
			if statusFlag != "" {
				v, err := parseEnum("--status", statusFlag, "CEREMONY_STATUS_", pb.CeremonyStatus_value)
				if err != nil {
					return err
				}
				st = pb.CeremonyStatus(v)
			}
			all := &pb.ListCeremoniesResponse{}
			if err := listAll(c, cf, func(ctx context.Context, cc *grpc.ClientConn, token string) (string, error) {
				resp, err := pb.NewCeremonyServiceClient(cc).ListCeremonies(ctx, &pb.ListCeremoniesRequest{Status: st, PageToken: token})
				all.Ceremonies = append(all.Ceremonies, resp.GetCeremonies()...)
				return resp.GetNextPageToken(), err
			}); err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, all)
			}
			tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tSTATUS\tAPPROVALS\tPROPOSER\tCREATED\tSUMMARY")
			for _, cer := range all.GetCeremonies() {
				summary := "(proposal does not decode)"
				if p, err := verifiedProposal(cer); err == nil {
					summary = ceremony.Sentence(p.Params)
					if len(summary) > 60 {
						summary = summary[:57] + "..."
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", cer.GetId(), flagName(cer.GetKind().String(), "CEREMONY_KIND_"),
					statusName(cer.GetStatus()), cer.GetValidApprovals(), cer.GetQuorum(), cer.GetProposer(),
					plainTime(cer.GetCreateTime()), summary)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&statusFlag, "status", "", "only ceremonies with this status")
	return cmd
}

func newCeremonyShowCmd(io *stdio, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one ceremony: what it does (decoded here), its status and votes",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkIDArg(args[0]); err != nil {
				return err
			}
			var resp *pb.GetCeremonyResponse
			if err := adminCall(c, cf, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewCeremonyServiceClient(cc).GetCeremony(ctx, &pb.GetCeremonyRequest{Id: args[0]})
				return err
			}); err != nil {
				return err
			}
			p, err := verifiedProposal(resp.GetCeremony())
			if err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, resp)
			}
			return printCeremony(io.out, resp.GetCeremony(), p)
		},
	}
}

func newCeremonyLogCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var after uint64
	cmd := &cobra.Command{
		Use:   "log [--after SEQ]",
		Short: "Print the hash-chained ceremony log",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			all := &pb.GetCeremonyLogResponse{}
			for {
				var resp *pb.GetCeremonyLogResponse
				if err := adminCall(c, cf, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
					resp, err = pb.NewCeremonyServiceClient(cc).GetCeremonyLog(ctx, &pb.GetCeremonyLogRequest{AfterSeq: after})
					return err
				}); err != nil {
					return err
				}
				all.Entries = append(all.Entries, resp.GetEntries()...)
				all.HeadSeq = resp.GetHeadSeq()
				n := len(resp.GetEntries())
				if n == 0 {
					break
				}
				after = resp.GetEntries()[n-1].GetSeq()
				if after >= resp.GetHeadSeq() {
					break
				}
			}
			if cf.json() {
				return writeProtoJSON(io.out, all)
			}
			tw := tabwriter.NewWriter(io.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tTIME\tTYPE\tCEREMONY\tCUSTODIAN\tHASH\tDETAIL")
			for _, e := range all.GetEntries() {
				h := e.GetHash()
				if len(h) > 16 {
					h = h[:16]
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.GetSeq(), plainTime(e.GetTime()), e.GetType(),
					firstNonEmpty(e.GetCeremonyId(), "-"), firstNonEmpty(e.GetCustodian(), "-"), h, e.GetDetail())
			}
			return tw.Flush()
		},
	}
	cmd.Flags().Uint64Var(&after, "after", 0, "only entries after this sequence number")
	return cmd
}

func newCeremonyAuditCmd(io *stdio, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "audit",
		Short: "Have the vault re-verify the whole ceremony log (chain, signatures, quorums)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var resp *pb.AuditCeremonyLogResponse
			if err := adminCall(c, cf, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewCeremonyServiceClient(cc).AuditCeremonyLog(ctx, &pb.AuditCeremonyLogRequest{})
				return err
			}); err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, resp)
			}
			fmt.Fprintf(io.out, "ceremony log verified: %d entries, head %s\n", resp.GetEntries(), resp.GetHeadHash())
			for _, s := range []string{"pending", "executed", "failed", "rejected", "expired"} {
				if n, ok := resp.GetCeremoniesByStatus()[s]; ok {
					fmt.Fprintf(io.out, "  %s: %d\n", s, n)
				}
			}
			return nil
		},
	}
}
