package ledger

import (
	"fmt"
	"time"
)

// parseTimestamp parses an ISO 8601 / RFC 3339 date-time:
//
//	YYYY-MM-DD('T'|'t'|' ')hh:mm:ss[.f{1,9}][Z|z|±hh:mm|±hhmm|±hh]
//
// Without a zone the time is UTC. Seconds are required (RFC 3339 requires them and the seed's
// producer always writes them). The ledger column has microsecond precision, so digits below
// the microsecond must be zero: a value is never silently truncated. Dates are checked for
// real (no February 30, no hour 24, no leap second 60, which Iceberg cannot store either).
// It is hand-written because time.Parse costs twice as much and accepts no zone-less form with
// a space separator.
func parseTimestamp(s []byte) (time.Time, string) {
	secs, nanos, why := timestampParts(s)
	if why != "" {
		return time.Time{}, badTimestamp(s, why)
	}
	return time.Unix(secs, int64(nanos)).UTC(), ""
}

// parseTimestampMicros is parseTimestamp in microseconds since the epoch, what a column
// holds, without building a time.Time.
func parseTimestampMicros(s []byte) (int64, string) {
	secs, nanos, why := timestampParts(s)
	if why != "" {
		return 0, badTimestamp(s, why)
	}
	return secs*1_000_000 + int64(nanos/1000), ""
}

func badTimestamp(s []byte, why string) string {
	return fmt.Sprintf("timestamp %s is not ISO 8601 / RFC 3339: %s", quoteClip(s), why)
}

// timestampParts parses a timestamp (parseTimestamp) into Unix seconds and nanoseconds, or
// says why it is not one.
func timestampParts(s []byte) (secs int64, nanos int, why string) {
	bad := func(why string) (int64, int, string) { return 0, 0, why }
	if len(s) < len("2006-01-02T15:04:05") {
		return bad("too short (want YYYY-MM-DDThh:mm:ss)")
	}
	year, ok1 := digits4(s[0:4])
	month, ok2 := digits2(s[5:7])
	day, ok3 := digits2(s[8:10])
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' {
		return bad("want a date YYYY-MM-DD")
	}
	if c := s[10]; c != 'T' && c != 't' && c != ' ' {
		return bad("want 'T' or a space between date and time")
	}
	hour, ok1 := digits2(s[11:13])
	min, ok2 := digits2(s[14:16])
	sec, ok3 := digits2(s[17:19])
	if !ok1 || !ok2 || !ok3 || s[13] != ':' || s[16] != ':' {
		return bad("want a time hh:mm:ss")
	}
	if year < 1 {
		return bad("year 0000 is out of range")
	}
	if month < 1 || month > 12 {
		return bad("month out of range")
	}
	if day < 1 || day > daysIn(month, year) {
		return bad("day out of range for the month")
	}
	if hour > 23 || min > 59 || sec > 59 {
		return bad("time of day out of range")
	}
	rest := s[19:]
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		frac := rest[1:n]
		if len(frac) == 0 {
			return bad("no digits after the decimal point")
		}
		if len(frac) > 9 {
			return bad("more than 9 fractional digits")
		}
		for i, c := range frac {
			if i >= 6 && c != '0' {
				return bad("precision finer than a microsecond (the ledger does not round)")
			}
			if i < 6 {
				nanos = nanos*10 + int(c-'0')
			}
		}
		for i := len(frac); i < 6; i++ {
			nanos *= 10
		}
		nanos *= 1000
		rest = rest[n:]
	}
	var offset int // seconds east of UTC
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && (rest[0] == 'Z' || rest[0] == 'z'):
	case rest[0] == '+' || rest[0] == '-':
		var oh, om int
		var ok bool
		switch {
		case len(rest) == 3: // ±hh
			oh, ok = digits2(rest[1:3])
		case len(rest) == 5: // ±hhmm
			oh, ok = digits2(rest[1:3])
			var ok2 bool
			om, ok2 = digits2(rest[3:5])
			ok = ok && ok2
		case len(rest) == 6 && rest[3] == ':': // ±hh:mm
			oh, ok = digits2(rest[1:3])
			var ok2 bool
			om, ok2 = digits2(rest[4:6])
			ok = ok && ok2
		}
		if !ok {
			return bad("want a zone Z, ±hh:mm, ±hhmm or ±hh")
		}
		if oh > 23 || om > 59 {
			return bad("zone offset out of range")
		}
		offset = oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return bad("want a zone Z, ±hh:mm, ±hhmm or ±hh")
	}
	secs = daysFromCivil(year, month, day)*86400 + int64(hour*3600+min*60+sec-offset)
	if secs < minTimestamp || secs > maxTimestamp {
		// An offset can push 0001-01-01 or 9999-12-31 out of the range that Spark and Iceberg
		// read back, and that this parser reads back.
		return bad("outside 0001-01-01 to 9999-12-31 in UTC")
	}
	return secs, nanos, ""
}

// The accepted range of event times, in Unix seconds: years 1 to 9999, in UTC.
var (
	minTimestamp = daysFromCivil(1, 1, 1) * 86400
	maxTimestamp = daysFromCivil(10000, 1, 1)*86400 - 1
)

// digits2 parses two ASCII digits, without a loop or a branch per digit (a byte below '0'
// wraps past 9).
func digits2(b []byte) (int, bool) {
	_ = b[1]
	x, y := b[0]-'0', b[1]-'0'
	return int(x)*10 + int(y), x <= 9 && y <= 9
}

// digits4 parses four ASCII digits.
func digits4(b []byte) (int, bool) {
	hi, ok1 := digits2(b[0:2])
	lo, ok2 := digits2(b[2:4])
	return hi*100 + lo, ok1 && ok2
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(month, year int) int {
	switch month {
	case 2:
		if isLeap(year) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil counts days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
// algorithm; year >= 1 keeps every intermediate non-negative).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12 // March is 0
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// ParseTimestamp parses a timestamp by the ledger's rules (see Rules.Decode) and returns it in
// UTC. The error, if any, is a *Reject with reason bad_timestamp.
func ParseTimestamp(s string) (time.Time, error) {
	t, msg := parseTimestamp([]byte(s))
	if msg != "" {
		return time.Time{}, &Reject{Reason: ReasonBadTimestamp, Message: msg}
	}
	return t, nil
}
