package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/ceremony"
)

// maxRegistrationFile bounds a registration file read.
const maxRegistrationFile = 16 << 10

func newCustodianCmd(io *stdio, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "custodian",
		Short: "Key custodians: make a signing key, register, list",
		Long: `Key custodians approve key-management ceremonies, M of N, each by signing
with their own key: a key in their own PKCS#11 token (smartcard, USB HSM), or
a key file in dev mode. --custodian-key takes either a file path or a URI
  pkcs11:token=LABEL;object=KEYLABEL?pin-source=file:/path/to/pin
(the PIN file must be mode 0600; a PIN in the URI itself is refused).`,
	}
	cmd.AddCommand(newCustodianKeygenCmd(io, cf), newCustodianRegisterCmd(io, cf),
		newCustodianInitCmd(io, cf), newCustodianListCmd(io, cf))
	return cmd
}

func newCustodianKeygenCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var kf custodianKeyFlags
	var algName string
	cmd := &cobra.Command{
		Use:   "keygen --custodian-key FILE|pkcs11-uri [--alg ed25519|ecdsa-p256]",
		Short: "Make a custodian signing key (inside the token for a pkcs11: URI) and print its fingerprint",
		Long: `Make a new custodian signing key and print its fingerprint. For a pkcs11: URI
the key pair is generated inside the token as persistent objects labelled
"object": the private key is sensitive and never extractable, and can only
sign. For a file path a PEM key file is written (mode 0600; dev mode and
tests only). An existing key or file is never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			alg, err := ceremony.ParseAlgorithm(algName)
			if err != nil {
				return &usageError{fmt.Errorf("--alg: %w", err)}
			}
			k, err := kf.generate(c.Context(), alg)
			if err != nil {
				return err
			}
			defer k.Close()
			fp, err := k.Fingerprint()
			if err != nil {
				return err
			}
			if cf.json() {
				return writeJSON(io.out, map[string]string{"key": k.where, "algorithm": alg.String(), "fingerprint": fp.String()})
			}
			fmt.Fprintf(io.out, "%s key %s\nfingerprint %s\n", alg, k.where, fp)
			return nil
		},
	}
	kf.register(cmd)
	cmd.Flags().StringVar(&algName, "alg", "ed25519", "ed25519 or ecdsa-p256")
	return cmd
}

func newCustodianRegisterCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var kf custodianKeyFlags
	var name, out string
	var yes bool
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "register --name NAME --custodian-key FILE|pkcs11-uri [--out FILE] [--yes]",
		Short: "Acknowledge the custodian duties with your key, and propose your registration",
		Long: `Prints the statement of key-custodian duties (PCI DSS 3.7.8) with your name,
your key's fingerprint and the time, asks you to confirm (or --yes), and signs
it with your custodian key. Then:
  - without --out, proposes an add-custodian ceremony (admin identity needed),
    which M registered custodians must approve;
  - with --out FILE, writes the signed registration to FILE (JSON), for
    "panvault custodian init" when a cluster's first custodians are set up.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			k, err := kf.open(c.Context())
			if err != nil {
				return err
			}
			defer k.Close()
			fp, err := k.Fingerprint()
			if err != nil {
				return err
			}
			at := time.Now().UTC()
			w := io.out
			if cf.json() {
				w = io.err
			}
			fmt.Fprint(w, ceremony.AcknowledgementStatement(name, fp, at))
			fmt.Fprintln(w)
			if err := confirm(io, yes, "Sign this acknowledgement as "+name+"?"); err != nil {
				return err
			}
			cu, err := ceremony.SignAcknowledgement(k, name, at)
			if err != nil {
				return err
			}
			reg := &pb.CustodianRegistration{Name: cu.Name, PublicKeyDer: cu.PublicKey,
				AcknowledgeTime: timestamppb.New(cu.Acknowledged), AckSignature: cu.AckSignature}
			if out != "" {
				b, err := protojson.MarshalOptions{UseProtoNames: true, Multiline: true}.Marshal(reg)
				if err != nil {
					return err
				}
				if err := writeNewFile(out, append(b, '\n'), 0o644); err != nil {
					return err
				}
				if cf.json() {
					return writeJSON(io.out, map[string]string{"registration_file": out, "name": name, "fingerprint": fp.String()})
				}
				fmt.Fprintf(io.out, "signed registration of %s (key %s) written to %s\n", name, fp, out)
				return nil
			}
			req := &pb.ProposeRequest{Params: &pb.CeremonyParams{Params: &pb.CeremonyParams_AddCustodian{
				AddCustodian: &pb.AddCustodianParams{Custodian: reg}}}}
			if ttl > 0 {
				req.Ttl = durationpb.New(ttl)
			}
			return runPropose(c, io, cf, req)
		},
	}
	kf.register(cmd)
	cmd.Flags().StringVar(&name, "name", "", "your custodian name: 1-63 of [a-z0-9_-], starting with a letter")
	cmd.Flags().StringVar(&out, "out", "", "write the signed registration to this file instead of proposing it")
	cmd.Flags().BoolVar(&yes, "yes", false, "sign without asking (you have read the statement)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the add-custodian proposal stays open (default: the server's, 72h)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// readRegistration reads a file written by `custodian register --out`.
func readRegistration(path string) (*pb.CustodianRegistration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRegistrationFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRegistrationFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxRegistrationFile)
	}
	reg := &pb.CustodianRegistration{}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(b, reg); err != nil {
		return nil, fmt.Errorf("%s: not a custodian registration: %w", path, err)
	}
	// Check it locally, as the vault will: the acknowledgement must verify.
	add := ceremony.AddCustodian{Name: reg.GetName(), PublicKey: reg.GetPublicKeyDer(),
		Acknowledged: reg.GetAcknowledgeTime().AsTime(), AckSignature: reg.GetAckSignature()}
	if err := add.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return reg, nil
}

func newCustodianInitCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var quorum uint32
	cmd := &cobra.Command{
		Use:   "init --quorum M REGISTRATION-FILE...",
		Short: "Register a cluster's first custodians and the quorum M (admin; once per cluster)",
		Long: `Registers the first custodians from their signed registration files (made with
"panvault custodian register --out FILE") and the quorum M (at least 2, at
most the number of custodians). Once per cluster: later changes are
ceremonies (add-custodian, remove-custodian, change-quorum). Running it again
with exactly the same registry reports it as existing.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			req := &pb.InitCustodiansRequest{Quorum: quorum}
			for _, a := range args {
				reg, err := readRegistration(a)
				if err != nil {
					return err
				}
				req.Custodians = append(req.Custodians, reg)
			}
			var resp *pb.InitCustodiansResponse
			if err := adminCall(c, cf, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewCeremonyServiceClient(cc).InitCustodians(ctx, req)
				return err
			}); err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, resp)
			}
			verb := "registered"
			if !resp.GetCreated() {
				verb = "already registered (identical)"
			}
			fmt.Fprintf(io.out, "%d custodians %s, quorum %d\n", len(resp.GetCustodians()), verb, resp.GetQuorum())
			return printCustodians(io.out, resp.GetCustodians())
		},
	}
	cmd.Flags().Uint32Var(&quorum, "quorum", 0, "M: approvals every ceremony needs")
	_ = cmd.MarkFlagRequired("quorum")
	return cmd
}

func newCustodianListCmd(io *stdio, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the registered custodians and the quorum",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			resp, err := listCustodians(c, cf)
			if err != nil {
				return err
			}
			if cf.json() {
				return writeProtoJSON(io.out, resp)
			}
			fmt.Fprintf(io.out, "quorum: %d of %d\n", resp.GetQuorum(), len(resp.GetCustodians()))
			return printCustodians(io.out, resp.GetCustodians())
		},
	}
}

func listCustodians(c *cobra.Command, cf *clientFlags) (*pb.ListCustodiansResponse, error) {
	var resp *pb.ListCustodiansResponse
	err := adminCall(c, cf, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		resp, err = pb.NewCeremonyServiceClient(cc).ListCustodians(ctx, &pb.ListCustodiansRequest{})
		return err
	})
	return resp, err
}

func printCustodians(w io.Writer, cs []*pb.Custodian) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tALGORITHM\tKEY FINGERPRINT\tACKNOWLEDGED\tREGISTERED")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.GetName(), c.GetAlgorithm(), c.GetFingerprint(),
			plainTime(c.GetAcknowledgeTime()), plainTime(c.GetRegisterTime()))
	}
	return tw.Flush()
}

// plainTime renders a timestamp as UTC to the second, "-" when unset.
func plainTime(ts *timestamppb.Timestamp) string {
	if ts == nil || (ts.GetSeconds() == 0 && ts.GetNanos() == 0) {
		return "-"
	}
	return ts.AsTime().UTC().Format("2006-01-02 15:04:05Z")
}

// custodianByKey returns the name of the registered custodian with key
// fingerprint fp, or "" when none has it.
func custodianByKey(resp *pb.ListCustodiansResponse, fp ceremony.Fingerprint) string {
	for _, c := range resp.GetCustodians() {
		if strings.EqualFold(c.GetFingerprint(), fp.String()) {
			return c.GetName()
		}
	}
	return ""
}
