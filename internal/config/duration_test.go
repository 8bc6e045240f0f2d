package config

import (
	"math"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "720h", want: 720 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "0.1d", want: 144 * time.Minute},
		{in: "90s", want: 90 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1us", want: time.Microsecond},
		{in: "1µs", want: time.Microsecond},
		{in: "2d3d", want: 5 * 24 * time.Hour},
		{in: "-2d", want: -48 * time.Hour},
		{in: "+1d", want: 24 * time.Hour},
		{in: "0", want: 0},
		{in: "-0", want: 0},
		{in: "0d", want: 0},
		{in: "106751d", want: 106751 * 24 * time.Hour},
		{in: "", wantErr: true},
		{in: "-", wantErr: true},
		{in: "d", wantErr: true},
		{in: "30", wantErr: true},
		{in: "30 d", wantErr: true},
		{in: "30days", wantErr: true},
		{in: "1w", wantErr: true},
		{in: ".d", wantErr: true},
		{in: "1..5d", wantErr: true},
		{in: "1D", wantErr: true},
		{in: "106752d", wantErr: true}, // > max time.Duration
		{in: "106751d24h", wantErr: true},
		{in: "99999999999999999999d", wantErr: true},
		{in: "--1d", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseRenewBefore(t *testing.T) {
	tests := []struct {
		in      string
		want    RenewBefore
		wantErr bool
	}{
		{in: "1/3", want: RenewBefore{Fraction: 1.0 / 3}},
		{in: "1/2", want: RenewBefore{Fraction: 0.5}},
		{in: "2/3", want: RenewBefore{Fraction: 2.0 / 3}},
		{in: "0.25", want: RenewBefore{Fraction: 0.25}},
		{in: ".5", want: RenewBefore{Fraction: 0.5}},
		{in: "0.999", want: RenewBefore{Fraction: 0.999}},
		{in: "30d", want: RenewBefore{Duration: 30 * 24 * time.Hour}},
		{in: "720h", want: RenewBefore{Duration: 720 * time.Hour}},
		{in: "1d12h", want: RenewBefore{Duration: 36 * time.Hour}},
		{in: "", wantErr: true},
		{in: "0", wantErr: true},
		{in: "0s", wantErr: true},
		{in: "-30d", wantErr: true},
		{in: "0/3", wantErr: true},
		{in: "3/3", wantErr: true},
		{in: "3/2", wantErr: true},
		{in: "1/0", wantErr: true},
		{in: "-1/3", wantErr: true},
		{in: "1/-3", wantErr: true},
		{in: "1/3/4", wantErr: true},
		{in: " 1/3", wantErr: true},
		{in: "1.5/3", wantErr: true},
		{in: "/3", wantErr: true},
		{in: "0.0", wantErr: true},
		{in: "1.0", wantErr: true},
		{in: "1.5", wantErr: true},
		{in: "1", wantErr: true},
		{in: "1e-1", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "inf", wantErr: true},
		{in: "33%", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseRenewBefore(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseRenewBefore(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && !(got.Duration > 0 && got.Fraction == 0 || got.Duration == 0 && got.Fraction > 0 && got.Fraction < 1 && !math.IsNaN(got.Fraction)) {
			t.Errorf("ParseRenewBefore(%q) = %+v, not exactly one of a positive duration or a fraction in (0,1)", tt.in, got)
		}
	}
}
