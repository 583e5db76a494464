package card

import (
	"strings"
	"testing"
)

// refLuhn is an independent textbook Luhn used as a test oracle: double every
// second digit from the right and subtract 9 from results above 9.
func refLuhn(s string) bool {
	if s == "" {
		return false
	}
	total := 0
	for i := 0; i < len(s); i++ {
		c := s[len(s)-1-i]
		if c < '0' || c > '9' {
			return false
		}
		v := int(c - '0')
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		total += v
	}
	return total%10 == 0
}

// maskForTest masks s (which may be invalid) for failure messages
// (MaskDigits).
func maskForTest(s string) string { return MaskDigits(s) }

// digitRuns returns the runs of at least min consecutive ASCII digits in s.
func digitRuns(s string, min int) []string {
	var runs []string
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start >= min {
			runs = append(runs, s[start:i])
		}
		start = -1
	}
	return runs
}

// assertNoEcho fails if msg contains any run of 5+ digits of input.
func assertNoEcho(t *testing.T, msg, input string) {
	t.Helper()
	for _, run := range digitRuns(input, 5) {
		for i := 0; i+5 <= len(run); i++ {
			if strings.Contains(msg, run[i:i+5]) {
				t.Fatalf("message %q echoes digits of input %s", msg, maskForTest(input))
			}
		}
	}
}
