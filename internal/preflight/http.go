package preflight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/renewer/renewer/internal/config"
)

const challengePath = "/.well-known/acme-challenge/"

// ProbeHTTP puts a probe file where the CA would look for an HTTP-01 answer
// (in the webroot, or served by a listener on the challenge's listen
// address) and fetches it over plain HTTP from each name's addresses on
// port, as the CA would. Each name that does not answer with the file is a
// warning (a load balancer or split DNS may still make it work for the CA).
func ProbeHTTP(ctx context.Context, ch config.Challenge, addrs map[string][]net.IP, port int) []Finding {
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	name := "renewer-check-" + hex.EncodeToString(token)
	body := "renewer check " + hex.EncodeToString(token)
	switch {
	case ch.Webroot != "":
		dir := filepath.Join(ch.Webroot, ".well-known", "acme-challenge")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return []Finding{{Check: "http-01", Level: Warning, Problem: fmt.Sprintf("cannot write into the webroot: %v", err),
				Fix: "make the webroot writable by renewer's user"}}
		}
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			return []Finding{{Check: "http-01", Level: Warning, Problem: fmt.Sprintf("cannot write into the webroot: %v", err),
				Fix: "make the webroot writable by renewer's user"}}
		}
		defer os.Remove(file)
	case ch.Listen != "":
		l, err := net.Listen("tcp", ch.Listen)
		if err != nil {
			// Busy: most likely renewer's daemon answers there; nothing to probe with.
			return []Finding{{Check: "http-01", Level: Warning, Problem: fmt.Sprintf("cannot listen on %s to probe it: %v", ch.Listen, err),
				Fix: "if renewer's daemon holds it, nothing to do; otherwise stop what listens there"}}
		}
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == challengePath+name {
				_, _ = io.WriteString(w, body)
				return
			}
			http.NotFound(w, r)
		})}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
	default:
		return nil
	}
	var out []Finding
	for host, ips := range addrs {
		if err := fetch(ctx, host, ips, port, challengePath+name, body); err != nil {
			where := "the webroot " + ch.Webroot
			fix := "serve " + ch.Webroot + challengePath + " at http://" + host + challengePath + " (e.g. nginx: location " + challengePath + " { root " + ch.Webroot + "; }), on port 80 of the name's addresses"
			if ch.Webroot == "" {
				where = "renewer's listener on " + ch.Listen
				fix = "make port 80 of the name's addresses reach " + ch.Listen + " (firewall, port forwarding, or the name's A/AAAA records)"
			}
			out = append(out, Finding{Check: "http-01", Level: Warning,
				Problem: fmt.Sprintf("a probe file in %s is not served at http://%s%s...: %v", where, host, challengePath, err), Fix: fix})
		}
	}
	return out
}

// fetch GETs path from host on each of its addresses and compares the body.
func fetch(ctx context.Context, host string, ips []net.IP, port int, path, want string) error {
	var errs []error
	for _, ip := range ips {
		addr := net.JoinHostPort(ip.String(), strconv.Itoa(port))
		tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}, DisableKeepAlives: true}
		hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		hostPort := host
		if port != 80 {
			hostPort = net.JoinHostPort(host, strconv.Itoa(port))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostPort+path, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, unwrapURL(err)))
			continue
		}
		got, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		switch {
		case resp.StatusCode != http.StatusOK:
			errs = append(errs, fmt.Errorf("%s: %s", addr, resp.Status))
		case string(got) != want:
			errs = append(errs, fmt.Errorf("%s: another file was served (%d bytes)", addr, len(got)))
		}
	}
	return errors.Join(errs...)
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
