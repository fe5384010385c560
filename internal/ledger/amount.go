package ledger

import (
	"fmt"
	"strconv"
)

// Amount limits: decimal(18,2) holds 16 integer digits and 2 fractional ones.
const (
	maxIntegerDigits  = 16
	maxFractionDigits = 2
	// MaxAmount is the largest amount the ledger holds, in hundredths: 9999999999999999.99.
	MaxAmount int64 = 999999999999999999
)

// parseAmount parses a decimal string into hundredths without floating point, so that no value
// is ever rounded. Accepted: digits, then optionally '.' and one or two digits. A leading '-'
// makes an otherwise well-formed amount nonpositive_amount rather than bad_amount, so that
// operators see "negative" rather than "unreadable". Leading zeros ("007.00") are accepted, as
// Spark's decimal cast accepts them; they count towards the 16 integer digits as written, so
// that the length rule can be checked without interpreting the digits.
func parseAmount(s []byte) (int64, Reason, string) {
	neg := len(s) > 0 && s[0] == '-'
	digits := s
	if neg {
		digits = s[1:]
	}
	i := 0
	var v int64
	for i < len(digits) && isDigit(digits[i]) {
		if i == maxIntegerDigits {
			return 0, ReasonBadAmount, fmt.Sprintf("amount %s has more than %d integer digits", quoteClip(s), maxIntegerDigits)
		}
		v = v*10 + int64(digits[i]-'0')
		i++
	}
	if i == 0 {
		return 0, ReasonBadAmount, amountShape(s)
	}
	v *= 100
	if i < len(digits) {
		if digits[i] != '.' {
			return 0, ReasonBadAmount, amountShape(s)
		}
		i++
		n := 0
		for i < len(digits) && isDigit(digits[i]) {
			if n == maxFractionDigits {
				return 0, ReasonBadAmount, fmt.Sprintf("amount %s has more than %d fractional digits (it is never rounded)", quoteClip(s), maxFractionDigits)
			}
			if n == 0 {
				v += 10 * int64(digits[i]-'0')
			} else {
				v += int64(digits[i] - '0')
			}
			n++
			i++
		}
		if n == 0 || i < len(digits) {
			return 0, ReasonBadAmount, amountShape(s)
		}
	}
	if neg || v == 0 {
		return 0, ReasonNonPositiveAmount, fmt.Sprintf("amount %s must be greater than zero", quoteClip(s))
	}
	return v, "", ""
}

func amountShape(s []byte) string {
	return "amount " + quoteClip(s) + " is not a plain decimal (digits, optionally '.' and 1 or 2 digits)"
}

// ParseAmount parses an amount string by the ledger's rules (see Rules.Decode) into hundredths.
// The error, if any, is a *Reject with reason bad_amount or nonpositive_amount.
func ParseAmount(s string) (int64, error) {
	v, reason, msg := parseAmount([]byte(s))
	if reason != "" {
		return 0, &Reject{Reason: reason, Message: msg}
	}
	return v, nil
}

// AppendAmount appends an amount in hundredths as a decimal string with two fractional digits
// ("10.50"), the form the producer sends and decimal(18,2) prints.
func AppendAmount(dst []byte, hundredths int64) []byte {
	if hundredths < 0 {
		dst = append(dst, '-')
		// Work on the unsigned magnitude so that math.MinInt64 prints correctly.
		u := uint64(-(hundredths + 1)) + 1
		return appendUnsignedAmount(dst, u)
	}
	return appendUnsignedAmount(dst, uint64(hundredths))
}

func appendUnsignedAmount(dst []byte, u uint64) []byte {
	dst = strconv.AppendUint(dst, u/100, 10)
	f := u % 100
	return append(dst, '.', byte('0'+f/10), byte('0'+f%10))
}

// FormatAmount formats an amount in hundredths as AppendAmount does.
func FormatAmount(hundredths int64) string { return string(AppendAmount(nil, hundredths)) }
