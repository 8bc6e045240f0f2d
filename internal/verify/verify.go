// Package verify checks that an endpoint serves the certificate renewer
// installed: it connects with TLS, sending the configured SNI name, and
// compares the leaf the server presents with the installed leaf byte for
// byte. Trust is not the question here (the installed certificate was
// checked before it went live); sameness is.
package verify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
)

// Intervals between attempts: the first retry comes quickly (a reload is
// usually done in well under a second), later ones back off to MaxInterval.
const (
	FirstInterval = 250 * time.Millisecond
	MaxInterval   = 2 * time.Second
	// dialTimeout bounds one connection attempt.
	dialTimeout = 5 * time.Second
	// Stable is how many connections in a row must get the installed
	// certificate: during a graceful reload old workers still accept
	// connections for a moment (nginx's do), so one good answer proves little.
	Stable = 3
	// stableInterval separates the confirming connections.
	stableInterval = 100 * time.Millisecond
)

// MismatchError says an endpoint serves another certificate than the installed one.
type MismatchError struct {
	Endpoint, ServerName string
	Want, Got            string // serials, lowercase hex
	GotNotAfter          time.Time
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s (SNI %q) serves serial %s (expires %s), not the installed serial %s",
		e.Endpoint, e.ServerName, e.Got, e.GotNotAfter.UTC().Format(time.RFC3339), e.Want)
}

// Served connects to endpoint with TLS, sends serverName as SNI (none when
// empty) and returns the leaf certificate the server presents.
func Served(ctx context.Context, endpoint, serverName string) (*x509.Certificate, error) {
	d := tls.Dialer{
		NetDialer: &net.Dialer{Timeout: dialTimeout},
		Config: &tls.Config{
			ServerName: serverName,
			// Sameness with the installed leaf is checked by the caller;
			// verifying trust here would fail for private CAs and tell
			// nothing more.
			InsecureSkipVerify: true, //nolint:gosec // see above
			MinVersion:         tls.VersionTLS12,
		},
	}
	conn, err := d.DialContext(ctx, "tcp", endpoint)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", endpoint, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("verify %s: the server presented no certificate", endpoint)
	}
	return certs[0], nil
}

// Wait checks v's endpoint until it serves want on Stable connections in a
// row, or v.Timeout has passed, retrying on connection errors and on a
// different certificate (a reload takes a moment to reach every worker, and
// old workers may answer meanwhile). The error is the last
// attempt's: a *MismatchError when the endpoint answered with another
// certificate.
func Wait(ctx context.Context, log *slog.Logger, v config.Verify, want *x509.Certificate) error {
	timeout := v.Timeout
	if timeout <= 0 {
		timeout = config.DefaultVerifyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	wantSerial := certinfo.FormatSerial(want.SerialNumber)
	interval := FirstInterval
	start := time.Now()
	var last error
	matches := 0
	for attempt := 1; ; attempt++ {
		got, err := Served(ctx, v.Endpoint, v.ServerName)
		if err != nil && ctx.Err() != nil && last != nil {
			err = last // cut short by the deadline: the previous attempt says more
		}
		if err == nil {
			if bytes.Equal(got.Raw, want.Raw) {
				if matches++; matches >= Stable {
					log.Info("served certificate verified", "endpoint", v.Endpoint, "server_name", v.ServerName,
						"serial", wantSerial, "attempts", attempt, "took", time.Since(start).Round(time.Millisecond))
					return nil
				}
				select {
				case <-ctx.Done():
					// A deadline in the middle of confirming: not proven.
					err = fmt.Errorf("served on %d of %d connections in a row before the deadline", matches, Stable)
				case <-time.After(stableInterval):
					continue
				}
			} else {
				err = &MismatchError{Endpoint: v.Endpoint, ServerName: v.ServerName,
					Want: wantSerial, Got: certinfo.FormatSerial(got.SerialNumber), GotNotAfter: got.NotAfter}
			}
		}
		matches = 0
		last = err
		log.Debug("served certificate not (yet) the installed one", "endpoint", v.Endpoint, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = fmt.Errorf("after %s (%d attempts): %w", timeout, attempt, err)
			}
			log.Error("served certificate verification failed", "endpoint", v.Endpoint, "server_name", v.ServerName, "err", err)
			return err
		case <-time.After(interval):
		}
		interval = min(2*interval, MaxInterval)
	}
}
