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

	pb "github.com/panvault/panvault/proto/panvault/v1"
)

// printKeyList prints one line per key version: its state, age and, for
// the latest version, when rotation is due (or how long it is overdue).
func printKeyList(w io.Writer, ks []*pb.KeyInfo, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tPURPOSE\tVERSION\tSTATE\tAGE\tKCV\tMASTER KCV\tCRYPTOPERIOD\tROTATION DUE")
	for _, k := range ks {
		period := "-"
		if cp := k.GetCryptoperiod(); cp != nil && cp.AsDuration() > 0 {
			period = humanDuration(cp.AsDuration())
		}
		for _, v := range k.GetVersions() {
			due := "-"
			if v.GetVersion() == k.GetLatestVersion() {
				due = rotationDue(k, now)
			}
			age := "-"
			if ct := v.GetCreateTime(); ct != nil && ct.IsValid() {
				age = humanDuration(now.Sub(ct.AsTime()))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", k.GetName(),
				flagName(k.GetType().String(), "KEY_TYPE_"), flagName(k.GetPurpose().String(), "KEY_PURPOSE_"),
				v.GetVersion(), flagName(v.GetState().String(), "KEY_STATE_"), age,
				firstNonEmpty(v.GetKcv(), "-"), firstNonEmpty(v.GetMasterKeyKcv(), "-"), period, due)
		}
	}
	return tw.Flush()
}

// rotationDue renders when the latest version's cryptoperiod ends.
func rotationDue(k *pb.KeyInfo, now time.Time) string {
	ts := k.GetRotationDueTime()
	if ts == nil || !ts.IsValid() || (ts.GetSeconds() == 0 && ts.GetNanos() == 0) {
		return "-"
	}
	due := ts.AsTime()
	date := due.UTC().Format("2006-01-02")
	if k.GetRotationOverdue() || !due.After(now) {
		return fmt.Sprintf("%s (OVERDUE by %s)", date, humanDuration(now.Sub(due)))
	}
	return fmt.Sprintf("%s (in %s)", date, humanDuration(due.Sub(now)))
}

// humanDuration rounds a duration for people: days, else hours, minutes
// or seconds.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= 2*time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return fmt.Sprintf("%ds", d/time.Second)
	}
}

func newKeyReencryptCmd(io *stdio, cf *clientFlags) *cobra.Command {
	var watch bool
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "reencrypt KEY [--watch]",
		Short: "Re-encrypt a vaulted key's stored PANs to its latest version (admin)",
		Long: `Start (or resume) re-encrypting the PAN ciphertexts stored under a
PAN-encryption key to the key's latest version, and print the job's progress.
A rotation ceremony of such a key starts the job by itself; running this again
shows the job that exists. With --watch it follows the job with a progress
bar on stderr until it is done (Ctrl-C stops watching, not the job). Tokens do
not change.`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			var resp *pb.StartReencryptResponse
			if err := adminCall(c, cf, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
				resp, err = pb.NewCeremonyServiceClient(cc).StartReencrypt(ctx, &pb.StartReencryptRequest{Key: args[0]})
				return err
			}); err != nil {
				return err
			}
			st := resp.GetStatus()
			if !watch {
				if cf.json() {
					return writeProtoJSON(io.out, resp)
				}
				verb := "started"
				if !resp.GetStarted() {
					verb = "already exists"
				}
				fmt.Fprintf(io.out, "re-encryption of %s to version %d %s\n", st.GetKey(), st.GetTargetVersion(), verb)
				printReencrypt(io.out, st)
				return nil
			}
			return watchReencrypt(c, io, cf, args[0], st, every)
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "follow the job with a progress bar until it is done")
	cmd.Flags().DurationVar(&every, "interval", time.Second, "how often --watch asks for progress")
	return cmd
}

func printReencrypt(w io.Writer, st *pb.ReencryptStatus) {
	fmt.Fprintf(w, "key %s -> version %d: %s, %d of ~%d records visited, %d re-encrypted, %d skipped\n",
		st.GetKey(), st.GetTargetVersion(), flagName(st.GetState().String(), "REENCRYPT_STATE_"),
		st.GetDone(), st.GetTotal(), st.GetReencrypted(), st.GetSkipped())
}

// progressBar renders done of total as a 30-character bar with a
// percentage. total is an estimate: the bar stops at 99% until finished,
// and shows 0% while nothing is known.
func progressBar(done, total uint64, finished bool) string {
	const width = 30
	frac := 0.0
	switch {
	case finished:
		frac = 1
	case total > 0:
		frac = min(0.99, float64(done)/float64(total))
	}
	n := int(frac * width)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + fmt.Sprintf("] %3.0f%%", frac*100)
}

// watchReencrypt polls the job until it is done, drawing a progress bar on
// stderr (one line per update when stderr is not a terminal).
func watchReencrypt(c *cobra.Command, io *stdio, cf *clientFlags, key string, st *pb.ReencryptStatus, every time.Duration) error {
	if every < 100*time.Millisecond {
		return &usageError{fmt.Errorf("--interval must be at least 100ms")}
	}
	cl, err := cf.connect()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx := c.Context()
	tty := isTerminalWriter(io.err)
	last := ""
	draw := func(st *pb.ReencryptStatus) {
		finished := st.GetState() == pb.ReencryptState_REENCRYPT_STATE_DONE
		line := fmt.Sprintf("%s %s v%d: %d of ~%d visited, %d re-encrypted, %d skipped", progressBar(st.GetDone(), st.GetTotal(), finished),
			st.GetKey(), st.GetTargetVersion(), st.GetDone(), st.GetTotal(), st.GetReencrypted(), st.GetSkipped())
		switch {
		case tty:
			fmt.Fprintf(io.err, "\r\033[K%s", line)
		case line != last:
			// Not a terminal (a log file): one line per change.
			fmt.Fprintln(io.err, line)
		}
		last = line
	}
	for {
		draw(st)
		if st.GetState() == pb.ReencryptState_REENCRYPT_STATE_DONE {
			break
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(io.err)
			}
			return fmt.Errorf("stopped watching (the job goes on): %w", ctx.Err())
		case <-time.After(every):
		}
		cctx, cancel := context.WithTimeout(ctx, cf.timeout)
		var resp *pb.GetReencryptStatusResponse
		err := cl.call(cctx, idempotent, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
			resp, err = pb.NewCeremonyServiceClient(cc).GetReencryptStatus(ctx, &pb.GetReencryptStatusRequest{Key: key})
			return err
		})
		cancel()
		if err != nil {
			return err
		}
		st = resp.GetStatus()
	}
	if tty {
		fmt.Fprintln(io.err)
	}
	if cf.json() {
		return writeProtoJSON(io.out, &pb.GetReencryptStatusResponse{Status: st})
	}
	printReencrypt(io.out, st)
	return nil
}

func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}
