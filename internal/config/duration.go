package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ParseDuration is time.ParseDuration plus the unit "d" (24h), as in "30d"
// or "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf(`%q is not a valid duration: want numbers with units (ns, us, ms, s, m, h, d), such as "30d" or "1h30m"`, s)
	rest, neg := s, false
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		neg, rest = rest[0] == '-', rest[1:]
	}
	if rest == "0" {
		return 0, nil
	}
	if rest == "" {
		return 0, bad
	}
	isNum := func(c byte) bool { return c == '.' || '0' <= c && c <= '9' }
	var total time.Duration
	for rest != "" {
		i := 0
		for i < len(rest) && isNum(rest[i]) {
			i++
		}
		j := i
		for j < len(rest) && !isNum(rest[j]) {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		mult := time.Duration(1)
		if unit == "d" {
			unit, mult = "h", 24
		}
		d, err := time.ParseDuration(num + unit)
		if err != nil {
			return 0, bad
		}
		if d > math.MaxInt64/mult || d*mult > math.MaxInt64-total {
			return 0, fmt.Errorf("%q is too large a duration", s)
		}
		total += d * mult
	}
	if neg {
		total = -total
	}
	return total, nil
}

var decimalRE = regexp.MustCompile(`^[0-9]*\.[0-9]+$`)

// ParseRenewBefore parses renew_before: a duration greater than zero ("30d",
// "720h"), a fraction a/b with 0<a<b ("1/3") or a decimal strictly between
// 0 and 1 ("0.25"), the latter two being fractions of the lifetime.
func ParseRenewBefore(s string) (RenewBefore, error) {
	if a, b, ok := strings.Cut(s, "/"); ok {
		x, err1 := strconv.Atoi(a)
		y, err2 := strconv.Atoi(b)
		if err1 != nil || err2 != nil || x <= 0 || x >= y {
			return RenewBefore{}, fmt.Errorf(`%q is not a fraction a/b of whole numbers with 0 < a < b, such as "1/3"`, s)
		}
		return RenewBefore{Fraction: float64(x) / float64(y)}, nil
	}
	if decimalRE.MatchString(s) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f >= 1 {
			return RenewBefore{}, fmt.Errorf(`%q is not a fraction strictly between 0 and 1, such as "0.25"`, s)
		}
		return RenewBefore{Fraction: f}, nil
	}
	d, err := ParseDuration(s)
	if err != nil {
		return RenewBefore{}, fmt.Errorf(`%q is neither a duration such as "30d" nor a fraction of the lifetime such as "1/3" or "0.25"`, s)
	}
	if d <= 0 {
		return RenewBefore{}, fmt.Errorf("%q is not a duration greater than zero", s)
	}
	return RenewBefore{Duration: d}, nil
}

// FormatDuration writes d as ParseDuration reads it, in days, hours and
// minutes ("30d", "1d12h", "45m"); seconds and less are dropped unless d is
// shorter than a minute.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	if d < time.Minute {
		return d.String()
	}
	var b strings.Builder
	days, h, m := d/(24*time.Hour), d%(24*time.Hour)/time.Hour, d%time.Hour/time.Minute
	for _, p := range []struct {
		n    time.Duration
		unit string
	}{{days, "d"}, {h, "h"}, {m, "m"}} {
		if p.n > 0 {
			fmt.Fprintf(&b, "%d%s", p.n, p.unit)
		}
	}
	return b.String()
}
