// Package watch checks TLS endpoints that renewer does not manage: it
// connects, reads the certificate the server presents, and judges how close
// it is to expiry. A certificate nobody renews is found before it expires.
package watch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/plan"
)

// Timeout bounds one check: connect and TLS handshake.
const Timeout = 10 * time.Second

// Check connects to endpoint (host:port), sends serverName as SNI (none when
// empty) and returns the facts of the certificates the server presents. It
// does not judge them: an expired or untrusted certificate is returned, not
// refused, so its expiry can be reported.
func Check(ctx context.Context, endpoint, serverName string) (*certinfo.Facts, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	d := tls.Dialer{
		NetDialer: &net.Dialer{},
		Config: &tls.Config{
			ServerName: serverName,
			// The chain is verified by Verify, after the certificate is read:
			// an expired or misissued certificate is what a watch is for.
			InsecureSkipVerify: true, //nolint:gosec
		},
	}
	conn, err := d.DialContext(ctx, "tcp", endpoint)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, err // "dial tcp host:port: connect: connection refused"
		}
		return nil, fmt.Errorf("TLS handshake with %s: %w", endpoint, err)
	}
	defer conn.Close()
	peers := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(peers) == 0 {
		return nil, fmt.Errorf("%s presented no certificate", endpoint)
	}
	var bundle []byte
	for _, c := range peers {
		bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	f, err := certinfo.Parse(bundle, nil)
	if err != nil {
		return nil, fmt.Errorf("certificate of %s: %w", endpoint, err)
	}
	return f, nil
}

// Verify checks that f's chain leads to one of roots (the system's when nil)
// at now and that the leaf covers serverName (not checked when empty). An
// expired leaf is not an error here: expiry is judged by Assess.
func Verify(f *certinfo.Facts, serverName string, roots *x509.CertPool, now time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range f.Chain {
		inter.AddCert(c)
	}
	_, err := f.Leaf.Verify(x509.VerifyOptions{
		DNSName: serverName, Roots: roots, Intermediates: inter, CurrentTime: now,
	})
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired && now.After(f.NotAfter) {
		return nil
	}
	return err
}

// Result is what one check of a watched endpoint found.
type Result struct {
	Watch     config.Watch
	Checked   time.Time
	Facts     *certinfo.Facts // what the server presented; nil when Err is set
	Err       error           // the endpoint could not be checked
	VerifyErr error           // the certificate does not verify or does not cover ServerName
	Health    plan.Health
	Problem   string // why Health is not OK, one line; empty when OK
}

// Assess judges a check at now: Critical when the certificate has expired or
// expires within critical_before, Warning within warn_before or when it does
// not verify or could not be read at all, OK otherwise.
func Assess(r *Result, now time.Time) {
	w := r.Watch
	r.Health, r.Problem = plan.OK, ""
	if r.Err != nil {
		r.Health, r.Problem = plan.Warning, "cannot check: "+r.Err.Error()
		return
	}
	left := r.Facts.NotAfter.Sub(now)
	switch {
	case left <= 0:
		r.Health, r.Problem = plan.Critical, fmt.Sprintf("expired %s ago", Days(-left))
	case left < w.CriticalBefore:
		r.Health, r.Problem = plan.Critical, fmt.Sprintf("expires in %s", Days(left))
	case left < w.WarnBefore:
		r.Health, r.Problem = plan.Warning, fmt.Sprintf("expires in %s", Days(left))
	}
	if r.VerifyErr != nil {
		r.Health = max(r.Health, plan.Warning)
		if r.Problem != "" {
			r.Problem += "; "
		}
		r.Problem += "does not verify: " + r.VerifyErr.Error()
	}
}

// Days shows how long is left (or overdue) for people: days with one
// decimal from two days up ("5.0 days"), else hours and minutes ("19h
// 12m", "40m", "30s"), so that short lifetimes do not read as "0.0 days".
func Days(d time.Duration) string {
	if d >= ShortSpan || d <= -ShortSpan {
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	}
	return HoursMinutes(d)
}

// ShortSpan is the time left under which Days and status show hours and
// minutes instead of days.
const ShortSpan = 48 * time.Hour

// HoursMinutes shows d as "19h 12m", "40m" or "30s".
func HoursMinutes(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	switch {
	case d >= time.Hour:
		return fmt.Sprintf("%s%dh %dm", sign, int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%s%dm", sign, int(d.Minutes()))
	}
	return fmt.Sprintf("%s%ds", sign, int(d.Seconds()))
}

// Checker checks watches; the zero value uses the system roots and time.Now.
type Checker struct {
	Now func() time.Time

	mu    sync.Mutex
	roots map[string]*x509.CertPool // by ca_bundle path
}

// CheckAll checks every watch at once and returns the results in the order
// of ws. It never fails as a whole: each result carries its own error.
func (c *Checker) CheckAll(ctx context.Context, ws []config.Watch) []Result {
	out := make([]Result, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() { out[i] = c.CheckOne(ctx, w) })
	}
	wg.Wait()
	return out
}

// CheckOne checks one watch and assesses it.
func (c *Checker) CheckOne(ctx context.Context, w config.Watch) Result {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	r := Result{Watch: w}
	r.Facts, r.Err = Check(ctx, w.Endpoint, w.ServerName)
	r.Checked = now()
	if r.Err == nil {
		roots, err := c.pool(w.CABundle)
		if err == nil {
			r.VerifyErr = Verify(r.Facts, w.ServerName, roots, r.Checked)
		} else {
			r.VerifyErr = err
		}
	}
	Assess(&r, r.Checked)
	return r
}

// pool returns the roots of a ca_bundle (nil, the system's, for none).
func (c *Checker) pool(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.roots[path]; p != nil {
		return p, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca_bundle: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("ca_bundle %s holds no certificate", path)
	}
	if c.roots == nil {
		c.roots = map[string]*x509.CertPool{}
	}
	c.roots[path] = p
	return p, nil
}
