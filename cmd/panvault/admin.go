package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// writeProtoJSON prints a response message as JSON with proto field names.
func writeProtoJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return err
	}
	// protojson varies its whitespace on purpose; print a stable layout.
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		return err
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// parseEnum maps a flag value ("ff1", "pan-encryption") onto a proto enum
// value named PREFIX_FLAG_VALUE.
func parseEnum(flag, val, prefix string, values map[string]int32) (int32, error) {
	name := prefix + strings.ToUpper(strings.ReplaceAll(val, "-", "_"))
	if v, ok := values[name]; ok && v != 0 {
		return v, nil
	}
	var allowed []string
	for k, v := range values {
		if v != 0 {
			allowed = append(allowed, strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, prefix), "_", "-")))
		}
	}
	sort.Strings(allowed)
	return 0, &usageError{fmt.Errorf("%s: %q is not one of %s", flag, val, strings.Join(allowed, ", "))}
}

// flagName shows an enum value the way flags spell it.
func flagName(full, prefix string) string {
	return strings.ToLower(strings.ReplaceAll(enumName(full, prefix), "_", "-"))
}

// adminCall connects and runs one admin RPC with fail-over, retried as rp
// allows, within --timeout.
func adminCall(cmd *cobra.Command, cf *clientFlags, rp retryPolicy, fn func(ctx context.Context, cc *grpc.ClientConn) error) error {
	cl, ctx, done, err := cf.session(cmd.Context())
	if err != nil {
		return err
	}
	defer done()
	return cl.call(ctx, rp, fn)
}

// listAll fetches every page of a list RPC over one connection: page sends
// the request for token and returns the next page's token ("" after the
// last page).
func listAll(cmd *cobra.Command, cf *clientFlags, page func(ctx context.Context, cc *grpc.ClientConn, token string) (next string, err error)) error {
	cl, ctx, done, err := cf.session(cmd.Context())
	if err != nil {
		return err
	}
	defer done()
	token := ""
	for {
		var next string
		if err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
			next, err = page(ctx, cc, token)
			return err
		}); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		token = next
	}
}

// parseKeySpec checks the --type, --purpose and --cryptoperiod flags that
// define a new key; no cryptoperiod (nil) leaves the server's default.
func parseKeySpec(typ, purpose, cryptoperiod string) (pb.KeyType, pb.KeyPurpose, *durationpb.Duration, error) {
	t, err := parseEnum("--type", typ, "KEY_TYPE_", pb.KeyType_value)
	if err != nil {
		return 0, 0, nil, err
	}
	p, err := parseEnum("--purpose", purpose, "KEY_PURPOSE_", pb.KeyPurpose_value)
	if err != nil {
		return 0, 0, nil, err
	}
	if cryptoperiod == "" {
		return pb.KeyType(t), pb.KeyPurpose(p), nil, nil
	}
	d, err := parsePeriod(cryptoperiod)
	if err != nil {
		return 0, 0, nil, &usageError{fmt.Errorf("--cryptoperiod: %w", err)}
	}
	return pb.KeyType(t), pb.KeyPurpose(p), durationpb.New(d), nil
}

func newSchemeCmd(io *stdio, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "scheme", Short: "Create and list token schemes (admin)"}
	var (
		mode, key, fpKey, luhn string
		keepLead, keepTrail    uint32
		det, nonLuhnUP         bool
		ttl                    time.Duration
		lengths                []uint
	)
	create := &cobra.Command{
		Use:   "create NAME --mode vaulted|ff1 --key KEY",
		Short: "Create a token scheme (idempotent for an identical definition)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			m, err := parseEnum("--mode", mode, "SCHEME_MODE_", pb.SchemeMode_value)
			if err != nil {
				return err
			}
			l, err := parseEnum("--luhn", luhn, "LUHN_RULE_", pb.LuhnRule_value)
			if err != nil {
				return err
			}
			s := &pb.Scheme{Name: args[0], Mode: pb.SchemeMode(m), KeepLeading: keepLead, KeepTrailing: keepTrail,
				LuhnRule: pb.LuhnRule(l), Deterministic: det, Key: key, FingerprintKey: fpKey, AllowNonLuhnUnionpay: nonLuhnUP}
			if ttl > 0 {
				s.Ttl = durationpb.New(ttl)
			}
			for _, n := range lengths {
				s.AllowedLengths = append(s.AllowedLengths, uint32(n))
			}
			var resp *pb.CreateSchemeResponse
			if err := adminCall(c, cf, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewAdminServiceClient(cc).CreateScheme(ctx, &pb.CreateSchemeRequest{Scheme: s})
				return err
			}); err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, resp)
			}
			verb := "created"
			if !resp.GetCreated() {
				verb = "exists (identical)"
			}
			fmt.Fprintf(io.out, "scheme %s %s\n", resp.GetScheme().GetName(), verb)
			return printSchemes(io.out, []*pb.Scheme{resp.GetScheme()})
		},
	}
	f := create.Flags()
	f.StringVar(&mode, "mode", "", "vaulted or ff1")
	f.StringVar(&key, "key", "", "key protecting tokens (purpose pan-encryption for vaulted, fpe for ff1)")
	f.StringVar(&fpKey, "fingerprint-key", "", "HMAC key (purpose fingerprint) for deterministic vaulted schemes")
	f.StringVar(&luhn, "luhn", "fail", "Luhn rule of tokens: fail, pass or any")
	f.Uint32Var(&keepLead, "keep-leading", 6, "leading PAN digits kept: 0, 6 or 8")
	f.Uint32Var(&keepTrail, "keep-trailing", 4, "trailing PAN digits kept: 0 or 4")
	f.BoolVar(&det, "deterministic", false, "vaulted: the same PAN always gets the same token")
	f.DurationVar(&ttl, "ttl", 0, "vaulted: token lifetime (0: never expire)")
	f.UintSliceVar(&lengths, "lengths", nil, "allowed PAN lengths, e.g. 15,16 (default 12-19)")
	f.BoolVar(&nonLuhnUP, "allow-non-luhn-unionpay", false, "accept UnionPay PANs that fail the Luhn check")
	_ = create.MarkFlagRequired("mode")
	_ = create.MarkFlagRequired("key")

	list := &cobra.Command{
		Use:   "list",
		Short: "List token schemes",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			all := &pb.ListSchemesResponse{}
			if err := listAll(c, cf, func(ctx context.Context, cc *grpc.ClientConn, token string) (string, error) {
				resp, err := pb.NewAdminServiceClient(cc).ListSchemes(ctx, &pb.ListSchemesRequest{PageToken: token})
				all.Schemes = append(all.Schemes, resp.GetSchemes()...)
				return resp.GetNextPageToken(), err
			}); err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, all)
			}
			return printSchemes(io.out, all.GetSchemes())
		},
	}
	cmd.AddCommand(create, list)
	return cmd
}

func printSchemes(w io.Writer, schemes []*pb.Scheme) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMODE\tKEEP\tLUHN\tDETERMINISTIC\tKEY\tFINGERPRINT KEY\tTTL\tLENGTHS")
	for _, s := range schemes {
		ttl := "-"
		if s.GetTtl() != nil && s.GetTtl().AsDuration() > 0 {
			ttl = s.GetTtl().AsDuration().String()
		}
		lens := make([]string, len(s.GetAllowedLengths()))
		for i, n := range s.GetAllowedLengths() {
			lens[i] = fmt.Sprint(n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d+%d\t%s\t%t\t%s\t%s\t%s\t%s\n", s.GetName(),
			flagName(s.GetMode().String(), "SCHEME_MODE_"), s.GetKeepLeading(), s.GetKeepTrailing(),
			flagName(s.GetLuhnRule().String(), "LUHN_RULE_"), s.GetDeterministic(), s.GetKey(),
			firstNonEmpty(s.GetFingerprintKey(), "-"), ttl, strings.Join(lens, ","))
	}
	return tw.Flush()
}

func newKeyCmd(io *stdio, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Create and list vault keys (admin)"}
	var typ, purpose, cryptoperiod string
	create := &cobra.Command{
		Use:   "create NAME --type TYPE --purpose PURPOSE",
		Short: "Generate a key inside the HSM and replicate it wrapped under the master key",
		Long: `Generate a key inside the HSM and replicate it, wrapped under the master key,
to every node. Types: aes256, hmac-sha256, ecdsa-p256, ecdsa-p384, rsa-3072,
ed25519. Purposes: pan-encryption, fpe, fingerprint, signing. Idempotent: a key
with this name, type and purpose is returned unchanged.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			t, p, period, err := parseKeySpec(typ, purpose, cryptoperiod)
			if err != nil {
				return err
			}
			req := &pb.CreateKeyRequest{Name: args[0], Type: t, Purpose: p, Cryptoperiod: period}
			var resp *pb.CreateKeyResponse
			if err := adminCall(c, cf, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewAdminServiceClient(cc).CreateKey(ctx, req)
				return err
			}); err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, resp)
			}
			verb := "created"
			if !resp.GetCreated() {
				verb = "exists (identical)"
			}
			fmt.Fprintf(io.out, "key %s %s\n", resp.GetKey().GetName(), verb)
			return printKeys(io.out, []*pb.KeyInfo{resp.GetKey()})
		},
	}
	create.Flags().StringVar(&typ, "type", "", "key type")
	create.Flags().StringVar(&purpose, "purpose", "", "key purpose")
	create.Flags().StringVar(&cryptoperiod, "cryptoperiod", "", "how long each version may encrypt or sign before rotation is due, e.g. 365d (default: 365d, 730d for signing keys)")
	_ = create.MarkFlagRequired("type")
	_ = create.MarkFlagRequired("purpose")

	list := &cobra.Command{
		Use:   "list",
		Short: "List keys (metadata only; never key material)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			all := &pb.ListKeysResponse{}
			if err := listAll(c, cf, func(ctx context.Context, cc *grpc.ClientConn, token string) (string, error) {
				resp, err := pb.NewAdminServiceClient(cc).ListKeys(ctx, &pb.ListKeysRequest{PageToken: token})
				all.Keys = append(all.Keys, resp.GetKeys()...)
				return resp.GetNextPageToken(), err
			}); err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, all)
			}
			return printKeyList(io.out, all.GetKeys(), time.Now())
		},
	}
	cmd.AddCommand(create, list, newKeyReencryptCmd(io, cf))
	return cmd
}

func printKeys(w io.Writer, ks []*pb.KeyInfo) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tPURPOSE\tVERSION\tSTATE\tKCV\tMASTER KCV")
	for _, k := range ks {
		state, kcv, mkcv := "-", "-", "-"
		for _, v := range k.GetVersions() {
			if v.GetVersion() == k.GetLatestVersion() {
				state = flagName(v.GetState().String(), "KEY_STATE_")
				kcv = firstNonEmpty(v.GetKcv(), "-")
				mkcv = firstNonEmpty(v.GetMasterKeyKcv(), "-")
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", k.GetName(), flagName(k.GetType().String(), "KEY_TYPE_"),
			flagName(k.GetPurpose().String(), "KEY_PURPOSE_"), k.GetLatestVersion(), state, kcv, mkcv)
	}
	return tw.Flush()
}
