package card

import (
	"regexp"
	"strings"
)

// HasPANLikeRun reports whether s holds 12 or more ASCII digits in a row,
// possibly grouped by single spaces or dashes: what a PAN or a numeric token
// in clear looks like. Masked forms (MaskChar in the middle) do not.
func HasPANLikeRun(s string) bool {
	n, sep := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			n++
			sep = false
			if n >= MinLength {
				return true
			}
		case (c == ' ' || c == '-') && n > 0 && !sep:
			sep = true
		default:
			n, sep = 0, false
		}
	}
	return false
}

// panLikeRun matches what HasPANLikeRun looks for.
var panLikeRun = regexp.MustCompile(`\d(?:[ -]?\d){11,}`)

// MaskPANLikeRuns returns s with every PAN-like run (HasPANLikeRun) replaced
// by its digits masked as MaskDigits does; s itself when there is none,
// without allocating.
func MaskPANLikeRuns(s string) string {
	if !HasPANLikeRun(s) {
		return s
	}
	return panLikeRun.ReplaceAllStringFunc(s, func(run string) string {
		return MaskDigits(groupSeparators.Replace(run))
	})
}

// groupSeparators strips the single spaces and dashes a PAN-like run may be
// grouped by.
var groupSeparators = strings.NewReplacer(" ", "", "-", "")
