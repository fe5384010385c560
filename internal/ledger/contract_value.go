package ledger

import (
	"cmp"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"time"
)

// Value is one column value of a row decoded by a custom contract. The zero Value is null.
type Value struct {
	// Valid is false for a null.
	Valid bool
	// at is where a string column's value starts in its row's Columns.Strings (Columns.Str);
	// Int is its length. (In Valid's padding: a row's values cost 24 bytes each, not 32.)
	at uint32
	// Int holds a long, an int, a boolean (1 is true), a date (days since 1970-01-01), a
	// timestamp (microseconds since 1970-01-01T00:00:00, UTC for timestamptz), the low 64
	// bits of a decimal's unscaled value, or a string's length in bytes.
	Int int64
	// Hi holds the high 64 bits of a decimal's unscaled value (two's complement, as Arrow's
	// decimal128 and Iceberg's decimal bytes).
	Hi int64
}

// Decimal128 returns a decimal value's unscaled integer as Arrow's decimal128 halves.
func (v Value) Decimal128() (hi int64, lo uint64) { return v.Hi, uint64(v.Int) }

// SetStr makes v the string at bytes [start, end) of its row's Columns.Strings.
func (v *Value) SetStr(start, end int) {
	v.at, v.Int = uint32(start), int64(end-start)
}

// appendCanonical appends the canonical string of v, a column of type t other than a string
// (whose canonical string is itself: Columns.AppendCanonical): what the row hash is made of
// and what `report` prints. It is Spark's cast to string: decimals with exactly their scale
// ("10.50"), timestamps as "2006-01-02 15:04:05.999999" (trailing fractional zeros dropped;
// timestamptz in UTC), dates as "2006-01-02", booleans as true/false. A null appends
// nothing.
func appendCanonical(dst []byte, t Type, v Value) []byte {
	if !v.Valid {
		return dst
	}
	switch t.Kind {
	case TypeLong, TypeInt:
		return strconv.AppendInt(dst, v.Int, 10)
	case TypeBoolean:
		return strconv.AppendBool(dst, v.Int != 0)
	case TypeDecimal:
		return appendDecimal(dst, dec128{hi: v.Hi, lo: uint64(v.Int)}, t.Scale)
	case TypeDate:
		return time.Unix(v.Int*86400, 0).UTC().AppendFormat(dst, "2006-01-02")
	case TypeTimestampTz, TypeTimestamp:
		return time.UnixMicro(v.Int).UTC().AppendFormat(dst, "2006-01-02 15:04:05.999999")
	}
	return dst
}

// dec128 is a signed 128-bit integer in two's complement: a decimal's unscaled value.
type dec128 struct {
	hi int64
	lo uint64
}

func (a dec128) cmp(b dec128) int {
	if a.hi != b.hi {
		return cmp.Compare(a.hi, b.hi)
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a dec128) neg() dec128 {
	lo, borrow := bits.Sub64(0, a.lo, 0)
	hi := -a.hi - int64(borrow)
	return dec128{hi: hi, lo: lo}
}

func (a dec128) negative() bool { return a.hi < 0 }

// mul10Add returns a*10 + d for a non-negative a, and whether the result is below 10^38
// (the magnitude a decimal(38, s) holds).
func (a dec128) mul10Add(d uint64) (dec128, bool) {
	if uint64(a.hi) >= 1<<60 { // a >= 2^124 > 10^37: a*10 is at least 10^38
		return dec128{}, false
	}
	h, l := bits.Mul64(a.lo, 10)
	hi := uint64(a.hi)*10 + h // a.hi < 2^60, so no overflow
	lo, c := bits.Add64(l, d, 0)
	hi += c
	ok := hi < pow10_38hi || hi == pow10_38hi && lo < pow10_38lo
	return dec128{hi: int64(hi), lo: lo}, ok
}

// 10^38, the first magnitude a decimal(38, s) cannot hold.
const (
	pow10_38hi = 0x4b3b4ca85a86c47a
	pow10_38lo = 0x098a224000000000
)

func (a dec128) big() *big.Int {
	b := new(big.Int).SetInt64(a.hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(a.lo)) // Or on the two's-complement value is exact here
}

// appendDecimal appends the unscaled value v with scale fractional digits.
func appendDecimal(dst []byte, v dec128, scale int) []byte {
	if v.negative() {
		dst = append(dst, '-')
		v = v.neg()
	}
	var digits []byte
	var buf [40]byte
	if v.hi == 0 {
		digits = strconv.AppendUint(buf[:0], v.lo, 10)
	} else {
		digits = v.big().Append(buf[:0], 10)
	}
	if scale == 0 {
		return append(dst, digits...)
	}
	if len(digits) <= scale {
		dst = append(dst, '0', '.')
		for range scale - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[:len(digits)-scale]...)
	dst = append(dst, '.')
	return append(dst, digits[len(digits)-scale:]...)
}

// Decimal is an exact decimal number at a given scale, as a contract's bounds hold it.
type Decimal struct {
	v     dec128
	scale int
	text  string // as written in the contract
}

func (d *Decimal) String() string { return d.text }

// Sign returns -1, 0 or +1.
func (d *Decimal) Sign() int {
	switch {
	case d.v.negative():
		return -1
	case d.v.hi == 0 && d.v.lo == 0:
		return 0
	}
	return 1
}

// digits counts the decimal digits of the unscaled value's magnitude (its precision).
func (d *Decimal) digits() int {
	v := d.v
	if v.negative() {
		v = v.neg()
	}
	if v.hi == 0 {
		if v.lo == 0 {
			return 1
		}
		return len(strconv.FormatUint(v.lo, 10))
	}
	return len(v.big().String())
}

func (d *Decimal) fitsInt64() bool {
	return d.v.hi == 0 && d.v.lo>>63 == 0 || d.v.hi == -1 && d.v.lo>>63 == 1
}

func (d *Decimal) fitsInt32() bool {
	if !d.fitsInt64() {
		return false
	}
	x := int64(d.v.lo)
	return x >= math.MinInt32 && x <= math.MaxInt32
}

// ParseDecimal parses an exact decimal ("-12.5") at scale: it may have at most scale
// fractional digits, and is never rounded.
func ParseDecimal(s string, scale int) (*Decimal, error) {
	v, frac, ok := parseDecimalText([]byte(s))
	switch {
	case !ok:
		return nil, fmt.Errorf("%q is not a plain decimal number", s)
	case frac > scale:
		return nil, fmt.Errorf("%q has more than %d fractional digits", s, scale)
	}
	v, ok = rescale(v, scale-frac)
	if !ok {
		return nil, fmt.Errorf("%q is too large", s)
	}
	return &Decimal{v: v, scale: scale, text: s}, nil
}

// parseDecimalText reads [-+]digits[.digits] (no exponent) into an unscaled value with frac
// fractional digits. ok is false for anything else or for more than 38 significant digits.
func parseDecimalText(s []byte) (v dec128, frac int, ok bool) {
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	// The first 19 digits accumulate in a uint64 (they cannot overflow it); a longer text goes
	// on in 128 bits.
	var n uint64
	intDigits, point := 0, false
	for _, c := range s {
		switch {
		case isDigit(c):
			switch digits := intDigits + frac; {
			case digits < 19:
				n = n*10 + uint64(c-'0')
			case digits == 19:
				v = dec128{lo: n}
				fallthrough
			default:
				if v, ok = v.mul10Add(uint64(c - '0')); !ok {
					return dec128{}, 0, false
				}
			}
			if point {
				frac++
			} else {
				intDigits++
			}
		case c == '.' && !point:
			point = true
		default:
			return dec128{}, 0, false
		}
	}
	if intDigits == 0 || point && frac == 0 {
		return dec128{}, 0, false
	}
	if intDigits+frac <= 19 {
		v = dec128{lo: n}
	}
	if neg {
		v = v.neg()
	}
	return v, frac, true
}

// pow10u64[k] is 10^k.
var pow10u64 = func() (t [19]uint64) {
	t[0] = 1
	for i := 1; i < len(t); i++ {
		t[i] = t[i-1] * 10
	}
	return t
}()

// rescale multiplies v by 10^k, reporting whether it still holds in 38 digits.
func rescale(v dec128, k int) (dec128, bool) {
	if v.hi == 0 && uint(k) < uint(len(pow10u64)) {
		// A non-negative value of 64 bits: one multiplication, when it stays below 2^63
		// (far below 10^38).
		if h, l := bits.Mul64(v.lo, pow10u64[k]); h == 0 && l>>63 == 0 {
			return dec128{lo: l}, true
		}
	}
	neg := v.negative()
	if neg {
		v = v.neg()
	}
	for range k {
		var ok bool
		if v, ok = v.mul10Add(0); !ok {
			return dec128{}, false
		}
	}
	if neg {
		v = v.neg()
	}
	return v, true
}
