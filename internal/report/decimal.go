package report

import (
	"math/big"
	"math/bits"
	"strconv"
)

// Scales of the decimal columns, as Spark types them for a decimal(18,2) amount:
// SUM is decimal(28,2) (precision + 10, same scale) and AVG is decimal(22,6)
// (precision + 4, scale + 4).
const (
	AmountScale = 2
	AvgScale    = 6
)

// Decimal is an exact decimal number, Unscaled × 10^-Scale. It prints with exactly
// Scale fractional digits, as Spark prints a decimal column ("1234.50", "0.000313"),
// and marshals to JSON as that string, never as a float.
type Decimal struct {
	Unscaled *big.Int // nil is zero
	Scale    int
}

// NewDecimal returns unscaled × 10^-scale.
func NewDecimal(unscaled int64, scale int) Decimal {
	return Decimal{Unscaled: big.NewInt(unscaled), Scale: scale}
}

// String returns d in plain notation with Scale fractional digits.
func (d Decimal) String() string {
	return string(d.appendTo(nil))
}

func (d Decimal) appendTo(b []byte) []byte {
	if d.Unscaled == nil {
		return d.appendDigits(b, false, []byte{'0'})
	}
	return d.appendDigits(b, d.Unscaled.Sign() < 0, new(big.Int).Abs(d.Unscaled).Append(nil, 10))
}

func (d Decimal) appendDigits(b []byte, neg bool, digits []byte) []byte {
	if neg {
		b = append(b, '-')
	}
	if d.Scale <= 0 {
		b = append(b, digits...)
		for range -d.Scale {
			b = append(b, '0')
		}
		return b
	}
	if len(digits) > d.Scale {
		b = append(b, digits[:len(digits)-d.Scale]...)
		b = append(b, '.')
		return append(b, digits[len(digits)-d.Scale:]...)
	}
	// At least one integer digit, as Java's BigDecimal prints it: 1 at scale 6 is 0.000001.
	b = append(b, '0', '.')
	for pad := d.Scale - len(digits); pad > 0; pad-- {
		b = append(b, '0')
	}
	return append(b, digits...)
}

// MarshalJSON encodes d as a JSON string, so that no JSON reader turns it into a float.
func (d Decimal) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, d.String()), nil
}

// int128 is a two's-complement 128-bit accumulator. The sum of up to 2^64 int64 values
// fits (|sum| < 2^127), which covers any table this service can scan, and adding to it
// costs two machine additions instead of a math/big allocation per row.
type int128 struct {
	hi int64
	lo uint64
}

func (s *int128) add(x int64) {
	var carry uint64
	s.lo, carry = bits.Add64(s.lo, uint64(x), 0)
	// Sign-extend x to 128 bits: its high word is -1 for a negative x, 0 otherwise.
	s.hi += x>>63 + int64(carry)
}

// addWide adds the 128-bit two's-complement value hi:lo.
func (s *int128) addWide(hi int64, lo uint64) {
	var carry uint64
	s.lo, carry = bits.Add64(s.lo, lo, 0)
	s.hi += hi + int64(carry)
}

// big returns s as a big.Int.
func (s int128) big() *big.Int {
	v := new(big.Int).SetInt64(s.hi)
	v.Lsh(v, 64)
	return v.Add(v, new(big.Int).SetUint64(s.lo))
}

var tenThousand = big.NewInt(10_000)

// avgUnscaled returns the unscaled decimal(22,6) value of Spark's AVG over n amounts
// of scale 2 whose unscaled sum is sum: sum/(100·n) rounded half up (ties away from
// zero, Java's HALF_UP) to 6 decimals, i.e. round(sum·10^4 / n).
//
// Spark computes it in two roundings: Decimal division to 39 fractional digits, half
// up, then toPrecision(22, 6, HALF_UP). One exact rounding gives the same result: the
// exact quotient differs from any 6-decimal midpoint by at least 1/(2·10^8·n), which
// for n < 2^63 is far above 10^-39, so the first rounding never creates or breaks a tie.
func avgUnscaled(sum *big.Int, n int64) *big.Int {
	if n <= 0 {
		return new(big.Int)
	}
	num := new(big.Int).Mul(new(big.Int).Abs(sum), tenThousand)
	den := big.NewInt(n)
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Lsh(r, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if sum.Sign() < 0 {
		q.Neg(q)
	}
	return q
}
