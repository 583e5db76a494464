package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/panvault/panvault/proto/panvault/v1"
	"github.com/panvault/panvault/vault/card"
	"github.com/panvault/panvault/vault/vaultpb"
)

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRecoveryHidesPanicValue: a handler panic becomes INTERNAL, and
// neither the status nor the log carries the panic value.
func TestRecoveryHidesPanicValue(t *testing.T) {
	var logs syncBuffer
	n := &Node{log: slog.New(slog.NewTextHandler(&logs, nil))}
	secret := "4111111111111111"
	intercept := recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(n.recovered))
	_, err := intercept(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x/y"},
		func(context.Context, any) (any, error) { panic("card " + secret) })
	st, _ := status.FromError(err)
	if st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("recovered status: %v %q", st.Code(), st.Message())
	}
	if strings.Contains(logs.String(), secret) || !strings.Contains(logs.String(), "handler panicked") {
		t.Fatalf("panic log line wrong or leaking (%d bytes)", len(logs.String()))
	}
}

// panicHoldingPAN panics in a frame whose argument is a PAN by value, as
// handler helpers take them: a runtime stack trace would print the
// argument's words.
//
//go:noinline
func panicHoldingPAN(p card.PAN) int {
	if p.Len() > 0 {
		panic("boom")
	}
	return 0
}

// TestRecoveryLogsNoFrameArguments: the panic log names the frames but
// carries no argument values, so no PAN digits (as text or as the hex
// words a runtime stack prints) reach it.
func TestRecoveryLogsNoFrameArguments(t *testing.T) {
	var logs syncBuffer
	n := &Node{log: slog.New(slog.NewTextHandler(&logs, nil))}
	pan, err := card.Parse("4111111111111111", card.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	intercept := recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(n.recovered))
	_, err = intercept(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x/y"},
		func(context.Context, any) (any, error) { return panicHoldingPAN(pan), nil })
	if status.Code(err) != codes.Internal {
		t.Fatalf("recovered: %v", status.Code(err))
	}
	out := logs.String()
	if !strings.Contains(out, "panicHoldingPAN") {
		t.Fatalf("panic log does not name the panicking frame (%d bytes)", len(out))
	}
	for _, leak := range []string{"4111111111111111", "0x34, 0x31, 0x31", "0x3131313131313134", "0x31313131"} {
		if strings.Contains(out, leak) {
			t.Fatalf("panic log carries PAN digits (pattern %d)", len(leak))
		}
	}
}

func TestUnknownFields(t *testing.T) {
	raw := protowire.AppendTag(nil, 77, protowire.VarintType)
	raw = protowire.AppendVarint(raw, 123)
	item := &pb.TokenizeBatchItem{Pan: "x"}
	item.ProtoReflect().SetUnknown(raw)
	req := &pb.TokenizeBatchRequest{Scheme: "pan", Items: []*pb.TokenizeBatchItem{{Pan: "y"}, item}}
	method := "/" + pb.TokenService_ServiceDesc.ServiceName + "/TokenizeBatch"
	if err := checkUnknownFields(method, req); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown field in a nested item: %v", err)
	}
	if err := checkUnknownFields(method, &pb.TokenizeBatchRequest{Scheme: "pan", Items: []*pb.TokenizeBatchItem{{Pan: "y"}}}); err != nil {
		t.Fatalf("clean request refused: %v", err)
	}
	// Other services are not checked (their messages carry no card data).
	if err := checkUnknownFields("/"+pb.AdminService_ServiceDesc.ServiceName+"/GetKey", req); err != nil {
		t.Fatalf("admin request checked: %v", err)
	}
}

func TestCapDeadline(t *testing.T) {
	ctx, cancel := capDeadline(context.Background())
	defer cancel()
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > DefaultRequestTimeout {
		t.Fatalf("no default deadline")
	}
	long, cancelLong := context.WithTimeout(context.Background(), time.Hour)
	defer cancelLong()
	ctx, cancel = capDeadline(long)
	defer cancel()
	if dl, _ := ctx.Deadline(); time.Until(dl) > MaxRequestTimeout {
		t.Fatalf("deadline not capped")
	}
	short, cancelShort := context.WithTimeout(context.Background(), time.Second)
	defer cancelShort()
	ctx, cancel = capDeadline(short)
	defer cancel()
	if dl, _ := ctx.Deadline(); time.Until(dl) > time.Second {
		t.Fatalf("short deadline lengthened")
	}
}

func TestRecords(t *testing.T) {
	rec := &vaultpb.TokenRecord{KeyVersion: 3, Sealed: []byte{1, 2, 3}, CreateUnixNanos: 5, ExpireUnixNanos: 9}
	b, err := encodeRecord(rec)
	if err != nil || b[0] != recordFormat {
		t.Fatalf("encode: %v", err)
	}
	again, _ := encodeRecord(rec)
	if !bytes.Equal(b, again) {
		t.Fatal("encoding is not deterministic (compare-and-set needs it)")
	}
	got, err := decodeToken(b)
	if err != nil || got.GetKeyVersion() != 3 || got.GetExpireUnixNanos() != 9 {
		t.Fatalf("decode: %v %v", got, err)
	}
	for _, bad := range [][]byte{nil, {}, {2, 8, 3}, {recordFormat, 0xff, 0xff}} {
		if _, err := decodeToken(bad); !errors.Is(err, ErrCorruptRecord) {
			t.Errorf("corrupt record %x: %v", bad, err)
		}
	}
	// Scopes of idempotency keys do not collide across their parts.
	a := idemKey("id", "tokenize", "pan", "x1")
	for _, k := range [][]byte{
		idemKey("id", "tokenize", "panx", "1"), idemKey("idt", "okenize", "pan", "x1"),
		idemKey("id", "delete_token", "pan", "x1"), idemKey("id2", "tokenize", "pan", "x1"),
	} {
		if bytes.Equal(a, k) {
			t.Fatal("idempotency scopes collide")
		}
	}
	// The associated data binds scheme, token and key version.
	base := panAAD("pan", "4111112222221111", 1)
	for _, other := range [][]byte{panAAD("pan2", "4111112222221111", 1), panAAD("pan", "4111112222221112", 1), panAAD("pan", "4111112222221111", 2)} {
		if bytes.Equal(base, other) {
			t.Fatal("aad does not bind every part")
		}
	}
}

// TestCoalescerDiscardsAbandonedResults: a caller whose context ends while
// its job runs gets its context error, and the results that come later are
// handed to discard (detokenize wipes the PANs there) instead of being left
// for the collector; a caller still waiting gets its results untouched.
func TestCoalescerDiscardsAbandonedResults(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := &Node{ctx: ctx, cancel: cancel, log: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))}
	r := newFF1Registry(n)
	started, release := make(chan struct{}, 1), make(chan struct{})
	c := newLingeringCoalescer(r, func(in []int) ([]int, []error, error) {
		started <- struct{}{}
		<-release
		out := make([]int, len(in))
		for i, x := range in {
			out[i] = x * 2
		}
		return out, make([]error, len(in)), nil
	}, time.Hour)
	discarded := make(chan []int, 1)
	c.discard = func(out []int) { discarded <- slices.Clone(out) }

	callCtx, leave := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.doMany(callCtx, []int{1, 2, 3})
		errc <- err
	}()
	<-started
	leave()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned call: %v", err)
	}
	close(release)
	select {
	case out := <-discarded:
		if !slices.Equal(out, []int{2, 4, 6}) {
			t.Fatalf("discarded %v, want the abandoned job's results", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("results of the abandoned job were never discarded")
	}
	// A caller that stays is answered and nothing is discarded.
	if out, errs, err := c.doMany(context.Background(), []int{5}); err != nil || out[0] != 10 || errs[0] != nil {
		t.Fatalf("waiting call: %v %v %v", out, errs, err)
	}
	select {
	case out := <-discarded:
		t.Fatalf("discarded %v of a caller that waited", out)
	default:
	}
}

// TestCoalescerGathers: while a batch runs, calls queue up; the next batch
// takes every queued call at once, and each caller gets its own answer.
func TestCoalescerGathers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{ctx: ctx, cancel: cancel, log: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))}
	r := newFF1Registry(n)
	release := make(chan struct{})
	var sizes []int // appended by the coalescer's workers under mu
	var mu sync.Mutex
	c := newCoalescer(r, func(in []int) ([]int, []error, error) {
		mu.Lock()
		sizes = append(sizes, len(in))
		wait := len(sizes) <= coalesceWorkers
		mu.Unlock()
		if wait {
			<-release
		}
		out := make([]int, len(in))
		errs := make([]error, len(in))
		for i, x := range in {
			out[i] = x * 2
			if x < 0 {
				errs[i] = card.ErrLuhn
			}
		}
		return out, errs, nil
	})
	type res struct {
		in, out int
		err     error
	}
	results := make(chan res, 200)
	call := func(x int) {
		out, err := c.do(context.Background(), x)
		results <- res{x, out, err}
	}
	// Occupy every worker with a blocked batch, then queue many calls.
	// One call at a time, so that each worker blocks on a batch of one.
	for i := range coalesceWorkers {
		go call(1000 + i)
		waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == i+1 })
	}
	const more = 100
	for i := 1; i <= more; i++ {
		go call(i)
	}
	go call(-5)
	waitFor(t, func() bool { return len(c.q) == more+1 })
	close(release)
	seen := 0
	for range coalesceWorkers + more + 1 {
		r := <-results
		seen++
		if r.in < 0 {
			if !errors.Is(r.err, card.ErrLuhn) {
				t.Fatalf("item error lost: %v", r.err)
			}
			continue
		}
		if r.err != nil || r.out != 2*r.in {
			t.Fatalf("call %d: %d, %v", r.in, r.out, r.err)
		}
	}
	cancel()
	n.wg.Wait()
	// The queued calls ran in a handful of batches (each free worker takes
	// everything queued), not one by one.
	queued := sizes[coalesceWorkers:]
	largest := slices.Max(queued)
	if len(queued) > 2*coalesceWorkers || largest < (more+1)/(2*coalesceWorkers) {
		t.Fatalf("%d queued calls ran in batches of %v", more+1, queued)
	}
	t.Logf("%d calls in %d batches (sizes %v)", seen, len(sizes), sizes)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCoalescerLingers: a caller alone never waits for company (with a
// linger of an hour its calls would hang), while callers that keep calling
// concurrently end up sharing batches although each batch runs instantly.
func TestCoalescerLingers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := &Node{ctx: ctx, cancel: cancel, log: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))}
	r := newFF1Registry(n)
	var mu sync.Mutex
	var sizes []int
	double := func(in []int) ([]int, []error, error) {
		mu.Lock()
		sizes = append(sizes, len(in))
		mu.Unlock()
		out := make([]int, len(in))
		for i, x := range in {
			out[i] = 2 * x
		}
		return out, make([]error, len(in)), nil
	}

	alone := newLingeringCoalescer(r, double, time.Hour)
	done := make(chan error, 1)
	go func() {
		for i := range 200 {
			if out, err := alone.do(context.Background(), i); err != nil || out != 2*i {
				done <- fmt.Errorf("call %d: %d %v", i, out, err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a single sequential caller waited for other calls")
	}

	mu.Lock()
	sizes = nil
	mu.Unlock()
	together := newLingeringCoalescer(r, double, 20*time.Millisecond)
	const callers, each = 8, 40
	errc := make(chan error, callers)
	for w := range callers {
		go func() {
			for i := range each {
				x := w*1000 + i
				if out, err := together.do(context.Background(), x); err != nil || out != 2*x {
					errc <- fmt.Errorf("call %d: %d %v", x, out, err)
					return
				}
				time.Sleep(100 * time.Microsecond)
			}
			errc <- nil
		}()
	}
	for range callers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total != callers*each || float64(total)/float64(len(sizes)) < 3 {
		t.Fatalf("%d calls in %d batches: %v", total, len(sizes), sizes)
	}
}

// TestCoalescerMergesBatchJobs: the items of concurrent batch calls queued
// behind a running batch run together in one batch (up to maxCoalesce
// items), and each call gets its own results in its own order.
func TestCoalescerMergesBatchJobs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := &Node{ctx: ctx, cancel: cancel, log: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))}
	r := newFF1Registry(n)
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	c := newCoalescer(r, func(in []int) ([]int, []error, error) {
		mu.Lock()
		sizes = append(sizes, len(in))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			<-release
		}
		out, errs := make([]int, len(in)), make([]error, len(in))
		for i, x := range in {
			out[i] = 3 * x
			if x%7 == 0 {
				errs[i] = card.ErrLuhn
			}
		}
		return out, errs, nil
	})
	go func() { _, _, _ = c.doMany(context.Background(), []int{1}) }()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == 1 })
	const calls, each = 6, 100 // 600 items: one batch
	errc := make(chan error, calls)
	for k := range calls {
		go func() {
			in := make([]int, each)
			for i := range in {
				in[i] = k*each + i + 1
			}
			out, errs, err := c.doMany(context.Background(), in)
			if err == nil && (len(out) != each || len(errs) != each) {
				err = fmt.Errorf("call %d: %d results", k, len(out))
			}
			for i := 0; err == nil && i < each; i++ {
				switch {
				case in[i]%7 == 0 && !errors.Is(errs[i], card.ErrLuhn):
					err = fmt.Errorf("call %d item %d: error lost", k, i)
				case in[i]%7 != 0 && (errs[i] != nil || out[i] != 3*in[i]):
					err = fmt.Errorf("call %d item %d: %d %v", k, i, out[i], errs[i])
				}
			}
			errc <- err
		}()
	}
	waitFor(t, func() bool { return len(c.q) == calls })
	close(release)
	for range calls {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.doMany(context.Background(), make([]int, maxCoalesce+1)); err == nil {
		t.Error("a call larger than maxCoalesce accepted")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[1] != calls*each {
		t.Fatalf("batches %v, want [1 %d]", sizes, calls*each)
	}
}

func TestCodeName(t *testing.T) {
	for c, want := range map[codes.Code]string{codes.OK: "OK", codes.NotFound: "NOT_FOUND",
		codes.InvalidArgument: "INVALID_ARGUMENT", codes.Unavailable: "UNAVAILABLE", codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.Canceled: "CANCELLED", codes.Code(99): "CODE(99)"} {
		if got := CodeName(c); got != want {
			t.Errorf("CodeName(%v) = %q, want %q", c, got, want)
		}
	}
}
