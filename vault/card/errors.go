package card

import "errors"

// Sentinel errors wrapped by every *RuleError this package returns.
var (
	// ErrEmpty means no PAN was given.
	ErrEmpty = errors.New("pan is empty")
	// ErrNotDigits means the PAN holds a character other than an ASCII digit.
	ErrNotDigits = errors.New("pan is not all ascii digits")
	// ErrLength means the PAN is not 12 to 19 digits long.
	ErrLength = errors.New("pan length is outside 12-19")
	// ErrLuhn means the PAN fails the Luhn check (and is not an allowed
	// non-Luhn UnionPay card).
	ErrLuhn = errors.New("pan fails the luhn check")
)

// Rule names carried in RuleError.Rule. They are stable: clients may match on them.
const (
	RuleRequired    = "required"
	RuleASCIIDigits = "ascii_digits"
	RuleLength      = "length"
	RuleLuhn        = "luhn"
)

// RuleError reports which validation rule an input broke. It never contains the
// input. Err is the sentinel it wraps (for errors.Is); Field names the request
// field ("pan", "pans[3]") so the gRPC edge can build a field violation.
//
// A RuleError is a plain value: safe for concurrent reads, not for concurrent
// modification.
type RuleError struct {
	Field       string // request field, e.g. "pan" or "pans[3]"
	Rule        string // machine-readable rule name, e.g. RuleLuhn
	Description string // lower-case human text without the input
	Err         error  // sentinel error
}

// Error returns "field: description".
func (e *RuleError) Error() string {
	return e.Field + ": " + e.Description
}

// Unwrap returns the sentinel error.
func (e *RuleError) Unwrap() error { return e.Err }

// WithField returns a copy of e naming another field (for example when a batch
// handler re-labels "pan" as "pans[3]").
func (e *RuleError) WithField(field string) *RuleError {
	c := *e
	c.Field = field
	return &c
}

// RuleErrors returns every *RuleError in err's tree (following Unwrap() error
// and Unwrap() []error), in depth-first order. The gRPC edge turns them into
// google.rpc.BadRequest field violations; other errors yield none.
func RuleErrors(err error) []*RuleError {
	var out []*RuleError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if re, ok := e.(*RuleError); ok {
			out = append(out, re)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}
