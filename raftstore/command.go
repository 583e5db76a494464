package raftstore

import (
	"fmt"

	"github.com/panvault/panvault/raftstore/raftpb"
	"google.golang.org/protobuf/proto"
)

// entryVersion is the only envelope version this code writes and applies.
const entryVersion = 1

// OpType names what an Op does.
type OpType int

// Op types. The numbers match raftpb.OpType.
const (
	OpPut           OpType = OpType(raftpb.OpType_OP_TYPE_PUT)
	OpPutIfAbsent   OpType = OpType(raftpb.OpType_OP_TYPE_PUT_IF_ABSENT)
	OpDelete        OpType = OpType(raftpb.OpType_OP_TYPE_DELETE)
	OpCompareAndSet OpType = OpType(raftpb.OpType_OP_TYPE_COMPARE_AND_SET)
)

// String names the op type.
func (t OpType) String() string {
	switch t {
	case OpPut:
		return "put"
	case OpPutIfAbsent:
		return "put-if-absent"
	case OpDelete:
		return "delete"
	case OpCompareAndSet:
		return "compare-and-set"
	}
	return fmt.Sprintf("op(%d)", int(t))
}

// Op is one operation of a Command. Build it with Put, PutIfAbsent, Delete
// or CompareAndSet. An Op is a plain value; the byte slices must not be
// modified until Propose returns.
type Op struct {
	Type   OpType
	Bucket string
	Key    []byte
	Value  []byte
	// Expected is the value CompareAndSet requires; ExpectAbsent requires
	// the key to be absent instead.
	Expected     []byte
	ExpectAbsent bool
}

// Put writes value under key, replacing any existing value.
func Put(bucket string, key, value []byte) Op {
	return Op{Type: OpPut, Bucket: bucket, Key: key, Value: value}
}

// PutIfAbsent writes value only if key is absent. If it is present the
// command fails and the Result carries the existing value.
func PutIfAbsent(bucket string, key, value []byte) Op {
	return Op{Type: OpPutIfAbsent, Bucket: bucket, Key: key, Value: value}
}

// Delete removes key; OpResult.Existed says whether it was there.
func Delete(bucket string, key []byte) Op {
	return Op{Type: OpDelete, Bucket: bucket, Key: key}
}

// CompareAndSet writes value only if the current value equals expected.
// Pass expected == nil to require the key to be absent.
func CompareAndSet(bucket string, key, expected, value []byte) Op {
	return Op{Type: OpCompareAndSet, Bucket: bucket, Key: key, Value: value, Expected: expected, ExpectAbsent: expected == nil}
}

// Result is the outcome of an applied command. A failed condition is a
// Result with Applied false, not an error.
type Result struct {
	// Applied: every op was written.
	Applied bool
	// FailedOp is the index of the op whose condition failed, or -1.
	FailedOp int
	// Ops holds one entry per op when applied; when a condition failed, the
	// entries up to and including FailedOp.
	Ops []OpResult
}

// OpResult is the outcome of one op.
type OpResult struct {
	// Existed: the key held a value before the command.
	Existed bool
	// Existing is the value that made a PutIfAbsent or CompareAndSet fail.
	Existing []byte
}

// Existing returns the value that made the command fail, if any.
func (r Result) Existing() ([]byte, bool) {
	if r.Applied || r.FailedOp < 0 || r.FailedOp >= len(r.Ops) {
		return nil, false
	}
	o := r.Ops[r.FailedOp]
	return o.Existing, o.Existed
}

func validBucket(name string) bool {
	return len(name) > 0 && len(name) <= MaxBucketName && bucketNameRE.MatchString(name)
}

// validateOp checks limits. It never mentions keys or values in errors.
func validateOp(i int, op *raftpb.Op) error {
	switch op.GetType() {
	case raftpb.OpType_OP_TYPE_PUT, raftpb.OpType_OP_TYPE_PUT_IF_ABSENT,
		raftpb.OpType_OP_TYPE_DELETE, raftpb.OpType_OP_TYPE_COMPARE_AND_SET:
	default:
		return fmt.Errorf("%w: op %d: unknown op type %d", ErrInvalidCommand, i, int32(op.GetType()))
	}
	if !validBucket(op.GetBucket()) {
		return fmt.Errorf("%w: op %d: bucket name must be 1-%d characters of [A-Za-z0-9._-]", ErrInvalidCommand, i, MaxBucketName)
	}
	if n := len(op.GetKey()); n == 0 || n > MaxKeySize {
		return fmt.Errorf("%w: op %d: key length %d not in 1..%d", ErrInvalidCommand, i, n, MaxKeySize)
	}
	if n := len(op.GetValue()); n > MaxValueSize {
		return fmt.Errorf("%w: op %d: value length %d exceeds %d", ErrInvalidCommand, i, n, MaxValueSize)
	}
	if n := len(op.GetExpected()); n > MaxValueSize {
		return fmt.Errorf("%w: op %d: expected length %d exceeds %d", ErrInvalidCommand, i, n, MaxValueSize)
	}
	return nil
}

func validateCommand(c *raftpb.Command) error {
	if n := len(c.GetOps()); n == 0 || n > MaxOpsPerCommand {
		return fmt.Errorf("%w: %d ops, want 1..%d", ErrInvalidCommand, n, MaxOpsPerCommand)
	}
	for i, op := range c.GetOps() {
		if err := validateOp(i, op); err != nil {
			return err
		}
	}
	return nil
}

func commandToProto(ops []Op) *raftpb.Command {
	c := &raftpb.Command{Ops: make([]*raftpb.Op, len(ops))}
	for i, op := range ops {
		c.Ops[i] = &raftpb.Op{
			Type:         raftpb.OpType(op.Type),
			Bucket:       op.Bucket,
			Key:          op.Key,
			Value:        op.Value,
			Expected:     op.Expected,
			ExpectAbsent: op.ExpectAbsent,
		}
	}
	return c
}

func resultFromProto(r *raftpb.Result) Result {
	out := Result{
		Applied:  r.GetStatus() == raftpb.Status_STATUS_APPLIED,
		FailedOp: int(r.GetFailedOp()),
		Ops:      make([]OpResult, len(r.GetOps())),
	}
	for i, o := range r.GetOps() {
		out.Ops[i] = OpResult{Existed: o.GetExisted(), Existing: o.GetExisting()}
	}
	return out
}

func encodeEntry(cmds []*raftpb.Command) ([]byte, error) {
	return proto.Marshal(&raftpb.Entry{Version: entryVersion, Commands: cmds})
}

// decodeEntry parses a log entry payload. An error means this node cannot
// apply the entry and must stop.
func decodeEntry(data []byte) (*raftpb.Entry, error) {
	var e raftpb.Entry
	if err := proto.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: undecodable entry: %w", ErrStateCorrupt, err)
	}
	if e.GetVersion() != entryVersion {
		return nil, fmt.Errorf("%w: entry version %d, this node understands %d", ErrStateCorrupt, e.GetVersion(), entryVersion)
	}
	return &e, nil
}
