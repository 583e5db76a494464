package ceremony

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The byte formats of this package share one set of primitives (see
// FORMAT.md for the full specification):
//
//   - unsigned and signed integers: fixed width, big-endian (u8, u32, u64, i64);
//   - byte strings and text: u32 length, then the bytes ("lp" below);
//   - hashes, fingerprints, nonces and KCVs: fixed width, no length;
//   - times: i64 nanoseconds since the Unix epoch, UTC;
//   - every format starts with lp(domain prefix), e.g. lp("panvault-ceremony-v1").
//
// Fields follow in a fixed order with no tags and no optional parts, so a
// value has exactly one encoding. Decoders check each length against a
// per-field maximum before allocating and refuse trailing bytes.

// encoder appends canonical fields to b.
type encoder struct{ b []byte }

func (e *encoder) u8(v uint8) { e.b = append(e.b, v) }

func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }

func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

func (e *encoder) i64(v int64) { e.u64(uint64(v)) }

// time encodes t as nanoseconds since the epoch. Callers have validated
// that t is within the int64 nanosecond range.
func (e *encoder) time(t time.Time) { e.i64(t.UnixNano()) }

// lp appends a length-prefixed byte string.
func (e *encoder) lp(v []byte) {
	e.u32(uint32(len(v)))
	e.b = append(e.b, v...)
}

func (e *encoder) str(s string) {
	e.u32(uint32(len(s)))
	e.b = append(e.b, s...)
}

// fixed appends bytes whose length the format fixes.
func (e *encoder) fixed(v []byte) { e.b = append(e.b, v...) }

// decoder reads canonical fields from b. The first problem is kept in err;
// later reads return zero values, so a parse function checks err once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (d *decoder) take(n int, field string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("%s: truncated", field)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(field string) uint8 {
	v := d.take(1, field)
	if v == nil {
		return 0
	}
	return v[0]
}

func (d *decoder) u32(field string) uint32 {
	v := d.take(4, field)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (d *decoder) u64(field string) uint64 {
	v := d.take(8, field)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (d *decoder) i64(field string) int64 { return int64(d.u64(field)) }

// time reads a time. Zero nanoseconds decode to the zero time.Time so that
// "not set" round-trips; every other value decodes to a UTC time without a
// monotonic reading.
func (d *decoder) time(field string) time.Time {
	n := d.i64(field)
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// lp reads a length-prefixed byte string of at most max bytes and returns
// a copy (nil when empty).
func (d *decoder) lp(max int, field string) []byte {
	n := d.u32(field)
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(max) {
		d.fail("%s: longer than %d bytes", field, max)
		return nil
	}
	v := d.take(int(n), field)
	if len(v) == 0 {
		return nil
	}
	return append([]byte(nil), v...)
}

func (d *decoder) str(max int, field string) string { return string(d.lp(max, field)) }

// fixed reads exactly n bytes into dst.
func (d *decoder) fixed(dst []byte, field string) {
	if v := d.take(len(dst), field); v != nil {
		copy(dst, v)
	}
}

// prefix reads lp(p) and fails unless it is exactly p.
func (d *decoder) prefix(p string) {
	got := d.lp(len(p), "prefix")
	if d.err == nil && string(got) != p {
		d.fail("not a %s encoding", p)
	}
}

// finish returns the first error, or an error if bytes remain.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// encodableTime reports whether t has an exact, positive int64 nanosecond
// encoding: after the Unix epoch and before the year 2262.
func encodableTime(t time.Time) bool {
	if t.IsZero() || t.Year() < 1970 || t.Year() > 2261 {
		return false
	}
	n := t.UnixNano()
	return n > 0 && time.Unix(0, n).Equal(t)
}
