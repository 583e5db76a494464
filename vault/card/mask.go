package card

import "strconv"

// MaskChar replaces hidden digits in masked PANs.
const MaskChar = '*'

// MaskOptions adjusts masking. The zero value shows a 6-digit BIN and last
// four. A plain value, safe for concurrent reads.
type MaskOptions struct {
	// EightDigitBIN declares that the issuer uses an 8-digit BIN, so PCI DSS
	// 3.4.1 lets the first eight digits be shown. It applies only to PANs of
	// 16 digits or more; shorter PANs keep a 6-digit BIN.
	EightDigitBIN bool
}

// minHidden is the fewest digits left hidden when a PAN is shorter than 15
// digits (see the package documentation).
const minHidden = 5

// MaskedLeading returns how many leading digits a masked PAN of length n shows
// under opts. The last four are always shown; n must be 12 to 19.
func MaskedLeading(n int, opts MaskOptions) int {
	lead := 6
	if opts.EightDigitBIN && n >= 16 {
		lead = 8
	}
	if n < 15 && n-4-lead < minHidden {
		lead = max(n-4-minHidden, 0)
	}
	return lead
}

// Masked returns the PAN with every digit but the BIN (6 digits) and the last
// four replaced by MaskChar, e.g. "411111******1111". For PANs shorter than 15
// digits fewer leading digits are shown (see MaskedLeading). The zero PAN
// masks to "".
func (p PAN) Masked() string { return p.MaskedWith(MaskOptions{}) }

// MaskedWith is Masked with options (an 8-digit BIN).
func (p PAN) MaskedWith(opts MaskOptions) string {
	n := int(p.n)
	if n == 0 {
		return ""
	}
	lead := MaskedLeading(n, opts)
	var buf [MaxLength]byte
	for i := 0; i < n; i++ {
		if i < lead || i >= n-4 {
			buf[i] = p.d[i]
		} else {
			buf[i] = MaskChar
		}
	}
	return string(buf[:n])
}

// MaskDigits masks a string that has not been validated, such as a token
// or a number typed where it does not belong, for logs, errors and test
// failure messages: a run of 12 or more ASCII digits shows what a PAN of
// that length would (MaskedLeading and the last four; at most 6+4 for runs
// longer than a PAN), anything else only its length. It never returns more
// of s than Masked would of a PAN of the same digits.
func MaskDigits(s string) string {
	n := len(s)
	if n < MinLength {
		return "[len " + strconv.Itoa(n) + "]"
	}
	b := []byte(s)
	lead := MaskedLeading(n, MaskOptions{})
	for i, c := range b {
		if c < '0' || c > '9' {
			return "[len " + strconv.Itoa(n) + "]"
		}
		if i >= lead && i < n-4 {
			b[i] = MaskChar
		}
	}
	return string(b)
}
