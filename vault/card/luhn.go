package card

// doubled[d] is the Luhn contribution of digit d in a doubled position.
var doubled = [10]byte{0, 2, 4, 6, 8, 1, 3, 5, 7, 9}

// undoubled inverts doubled: undoubled[doubled[d]] == d.
var undoubled = [10]byte{0, 5, 1, 6, 2, 7, 3, 8, 4, 9}

// luhnSum returns the Luhn sum of digits mod 10, skipping position skip (use -1
// to skip nothing), and whether every digit considered is an ASCII digit.
func luhnSum[T ~string | ~[]byte](digits T, skip int) (int, bool) {
	sum := 0
	double := false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			if i != skip {
				return 0, false
			}
		}
		if i != skip {
			d := c - '0'
			if double {
				d = doubled[d]
			}
			sum += int(d)
		}
		double = !double
	}
	return sum % 10, true
}

// Luhn reports whether digits, a string of ASCII digits, passes the Luhn
// (mod 10) check. It returns false for an empty input or any non-digit.
func Luhn[T ~string | ~[]byte](digits T) bool {
	if len(digits) == 0 {
		return false
	}
	sum, ok := luhnSum(digits, -1)
	return ok && sum == 0
}

// LuhnCheckDigit returns the ASCII check digit that, appended to payload, makes
// it pass the Luhn check. payload must be non-empty ASCII digits.
func LuhnCheckDigit[T ~string | ~[]byte](payload T) (byte, error) {
	if len(payload) == 0 {
		return 0, ErrEmpty
	}
	// The appended digit is undoubled; payload's last digit becomes doubled.
	sum := 0
	double := true
	for i := len(payload) - 1; i >= 0; i-- {
		c := payload[i]
		if c < '0' || c > '9' {
			return 0, ErrNotDigits
		}
		d := c - '0'
		if double {
			d = doubled[d]
		}
		sum += int(d)
		double = !double
	}
	return byte('0' + (10-sum%10)%10), nil
}

// LuhnDigitAt returns the ASCII digit that, placed at position pos, makes digits
// pass the Luhn check; the digit currently at pos is ignored (it may be anything).
// Every other byte must be an ASCII digit. Token schemes use it to set or
// recompute a check digit that is not the last digit.
func LuhnDigitAt(digits []byte, pos int) (byte, error) {
	if pos < 0 || pos >= len(digits) {
		return 0, ErrLength
	}
	sum, ok := luhnSum(digits, pos)
	if !ok {
		return 0, ErrNotDigits
	}
	need := byte((10 - sum) % 10)
	if (len(digits)-1-pos)%2 == 1 { // doubled position
		need = undoubled[need]
	}
	return '0' + need, nil
}
