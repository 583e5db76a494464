package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// maxMessageFile bounds a file read by sign and verify (the server caps
// messages lower; this only keeps the CLI from reading a huge file).
const maxMessageFile = 4 << 20

func readMessageFile(path string, in io.Reader) ([]byte, error) {
	var r io.Reader = in
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxMessageFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxMessageFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxMessageFile)
	}
	return b, nil
}

type signJSON struct {
	Key        string `json:"key"`
	KeyVersion uint32 `json:"key_version"`
	Algorithm  string `json:"algorithm"`
	Signature  string `json:"signature"`
}

func newSignCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var key string
	var version uint32
	cmd := &cobra.Command{
		Use:   "sign --key K FILE",
		Short: "Sign a file's bytes with an HSM signing key (FILE - reads stdin)",
		Long: `Sign the bytes of FILE with a signing key. The signature is printed in
base64 on one line (save it as SIGFILE for "panvault verify"); --output json
also gives the key version and algorithm. Keep the key version: verifying with
a later version of the key fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			msg, err := readMessageFile(args[0], io.in)
			if err != nil {
				return err
			}
			cl, ctx, done, err := cf.session(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			req := &pb.SignRequest{Key: key, KeyVersion: version, Message: msg}
			var resp *pb.SignResponse
			if err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewSigningServiceClient(cc).Sign(ctx, req)
				return err
			}); err != nil {
				return err
			}
			sig := base64.StdEncoding.EncodeToString(resp.GetSignature())
			if cf.json() {
				return writeJSON(io.out, signJSON{Key: resp.GetKey(), KeyVersion: resp.GetKeyVersion(),
					Algorithm: enumName(resp.GetAlgorithm().String(), "SIGNATURE_ALGORITHM_"), Signature: sig})
			}
			_, err = fmt.Fprintln(io.out, sig)
			return err
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "signing key name")
	cmd.Flags().Uint32Var(&version, "key-version", 0, "key version (0: latest)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func newVerifyCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var key string
	var version uint32
	cmd := &cobra.Command{
		Use:   "verify --key K FILE SIGFILE",
		Short: "Verify a signature (SIGFILE: base64, as printed by sign)",
		Long: `Verify that SIGFILE (the base64 signature printed by "panvault sign") is a
valid signature of FILE's bytes. Prints "valid" (exit 0) or "invalid" (exit 1).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "-" && args[1] == "-" {
				return &usageError{errors.New("FILE and SIGFILE cannot both be stdin")}
			}
			msg, err := readMessageFile(args[0], io.in)
			if err != nil {
				return err
			}
			sigText, err := readMessageFile(args[1], io.in)
			if err != nil {
				return err
			}
			sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sigText)))
			if err != nil {
				return fmt.Errorf("%s: not base64: %w", args[1], err)
			}
			cl, ctx, done, err := cf.session(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			req := &pb.VerifyRequest{Key: key, KeyVersion: version, Message: msg, Signature: sig}
			var resp *pb.VerifyResponse
			if err := cl.call(ctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewSigningServiceClient(cc).Verify(ctx, req)
				return err
			}); err != nil {
				return err
			}
			if cf.json() {
				if err := writeJSON(io.out, map[string]any{"valid": resp.GetValid(), "key": key, "key_version": resp.GetKeyVersion(),
					"algorithm": enumName(resp.GetAlgorithm().String(), "SIGNATURE_ALGORITHM_")}); err != nil {
					return err
				}
			} else if resp.GetValid() {
				fmt.Fprintln(io.out, "valid")
			} else {
				fmt.Fprintln(io.out, "invalid")
			}
			if !resp.GetValid() {
				return errItemsFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "signing key name")
	cmd.Flags().Uint32Var(&version, "key-version", 0, "key version that made the signature (0: latest)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}
