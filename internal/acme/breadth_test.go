package acme

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/testca"
)

// Two TLS-ALPN-01 orders at once share one listener on Pebble's tlsPort.
func TestObtainTLSALPN(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	c := testClient(t, ca, nil)
	c.opts.TLSSolver = NewTLSALPNSolver(nil)
	defer c.opts.TLSSolver.Close()
	listen := "127.0.0.1:" + strconv.Itoa(ca.TLSPort)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, name := range []string{"alpn1.example.test", "alpn2.example.test"} {
		wg.Go(func() {
			var cert *Certificate
			cert, errs[i] = c.Obtain(context.Background(), Request{Domains: []string{name}, TLSListen: listen})
			if errs[i] == nil && leafOf(t, cert).DNSNames[0] != name {
				errs[i] = fmt.Errorf("issued for %v", leafOf(t, cert).DNSNames)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("tls-alpn listener still open: %v", err)
	}
	ln.Close()
}

// Pebble requiring external account binding: refused without it, a clear
// error; registered and issued with it.
func TestEAB(t *testing.T) {
	t.Parallel()
	hmac := "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
	ca := testca.StartT(t, testca.Options{EAB: map[string]string{"kid-1": hmac}})
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	req := Request{Domains: []string{"eab.example.test"}, Listen: "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)}

	c := testClient(t, ca, solver)
	if _, err := c.Obtain(context.Background(), req); err == nil || !strings.Contains(err.Error(), "eab") {
		t.Fatalf("without EAB: err = %v, want a request for an eab block", err)
	}
	bad := testClient(t, ca, solver)
	bad.opts.EAB = &EAB{KID: "kid-1", HMAC: "AAAA" + hmac[4:]}
	if _, err := bad.Obtain(context.Background(), req); err == nil {
		t.Fatal("registered with a wrong HMAC")
	}
	good := testClient(t, ca, solver)
	good.opts.EAB = &EAB{KID: "kid-1", HMAC: hmac}
	cert, err := good.Obtain(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	leafOf(t, cert)
}

// The profile chosen decides the lifetime; a profile the CA does not offer
// is a clear error naming those it does.
func TestProfiles(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{Profiles: map[string]time.Duration{"shortlived": 160 * time.Hour}})
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	c := testClient(t, ca, solver)
	listen := "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)
	for profile, want := range map[string]time.Duration{"shortlived": 160 * time.Hour, "default": 90 * 24 * time.Hour} {
		cert, err := c.Obtain(context.Background(), Request{Domains: []string{profile + ".example.test"}, Listen: listen, Profile: profile})
		if err != nil {
			t.Fatal(err)
		}
		leaf := leafOf(t, cert)
		// Pebble's validity counts NotAfter inclusively: allow a second.
		if got := leaf.NotAfter.Sub(leaf.NotBefore); got < want-time.Second || got > want+time.Second {
			t.Errorf("profile %s: lifetime %s, want %s", profile, got, want)
		}
	}
	_, err := c.Obtain(context.Background(), Request{Domains: []string{"x.example.test"}, Listen: listen, Profile: "tlsserver"})
	if err == nil || !strings.Contains(err.Error(), `"tlsserver" is not offered`) || !strings.Contains(err.Error(), "default, shortlived") {
		t.Errorf("unknown profile: err = %v", err)
	}
}

// preferred_chain picks Pebble's alternate chain by its root's name.
func TestPreferredChain(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{Env: []string{"PEBBLE_ALTERNATE_ROOTS=1"}})
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	listen := "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)
	for _, i := range []int{0, 1} {
		rootPEM, err := ca.Root(i)
		if err != nil {
			t.Fatal(err)
		}
		root := parseCert(t, rootPEM)
		c := testClient(t, ca, solver)
		c.opts.PreferredChain = root.Subject.CommonName
		cert, err := c.Obtain(context.Background(), Request{Domains: []string{"chain" + strconv.Itoa(i) + ".example.test"}, Listen: listen})
		if err != nil {
			t.Fatal(err)
		}
		chain := parseCerts(t, cert.Chain)
		top := chain[len(chain)-1]
		if top.Issuer.CommonName != root.Subject.CommonName {
			t.Errorf("preferred %q: chain ends at one issued by %q", root.Subject.CommonName, top.Issuer.CommonName)
		}
		if err := top.CheckSignatureFrom(root); err != nil {
			t.Errorf("chain %d does not verify to root %d: %v", i, i, err)
		}
	}
}

// With a key to reuse, the new certificate certifies the same key.
func TestReuseKey(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	c := testClient(t, ca, solver)
	req := Request{Domains: []string{"reuse.example.test"}, Listen: "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)}
	first, err := c.Obtain(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	req.ReuseKey = first.Key
	second, err := c.Obtain(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	a, b := leafOf(t, first), leafOf(t, second)
	if a.SerialNumber.Cmp(b.SerialNumber) == 0 {
		t.Fatal("same certificate twice")
	}
	if !bytes.Equal(a.RawSubjectPublicKeyInfo, b.RawSubjectPublicKeyInfo) || !bytes.Equal(first.Key, second.Key) {
		t.Error("the key was not reused")
	}
	third, err := c.Obtain(context.Background(), Request{Domains: req.Domains, Listen: req.Listen})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(leafOf(t, third).RawSubjectPublicKeyInfo, a.RawSubjectPublicKeyInfo) {
		t.Error("a new key was expected without ReuseKey")
	}
}

// An IP address identifier (RFC 8738), validated over HTTP-01 at the IP.
func TestIPIdentifier(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	c := testClient(t, ca, solver)
	cert, err := c.Obtain(context.Background(), Request{Domains: []string{"127.0.0.1", "ip.example.test"}, Listen: "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)})
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, cert)
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || fmt.Sprint(leaf.DNSNames) != "[ip.example.test]" {
		t.Errorf("IPs %v, names %v", leaf.IPAddresses, leaf.DNSNames)
	}
}

// Dead, erroring and rate-limiting CAs are passed over for the next one; a
// CA that refuses for another reason is not.
func TestObtainFallback(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	port, err := testca.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dead := "https://127.0.0.1:" + strconv.Itoa(port) + "/dir"
	problem := func(status int, typ string) *httptest.Server {
		return httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"type": %q, "detail": "test", "status": %d}`, typ, status)
		}))
	}
	html := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	}))
	defer html.Close()
	limited := problem(http.StatusTooManyRequests, "urn:ietf:params:acme:error:rateLimited")
	defer limited.Close()
	internal := problem(http.StatusInternalServerError, "urn:ietf:params:acme:error:serverInternal")
	defer internal.Close()
	refused := problem(http.StatusForbidden, "urn:ietf:params:acme:error:unauthorized")
	defer refused.Close()

	client := func(dir string) *Client {
		c := testClient(t, ca, solver)
		c.opts.Directory = dir
		c.transport.(caTransport).rt.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true
		return c
	}
	req := Request{Domains: []string{"fallback.example.test"}, Listen: "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)}
	for _, first := range []string{dead, html.URL + "/dir", limited.URL + "/dir", internal.URL + "/dir"} {
		cert, err := ObtainFrom(context.Background(), nil, []*Client{client(first), client(ca.Directory)}, req)
		if err != nil {
			t.Errorf("first %s: %v", first, err)
			continue
		}
		if cert.Directory != ca.Directory {
			t.Errorf("first %s: issued by %s", first, cert.Directory)
		}
	}
	_, err = ObtainFrom(context.Background(), nil, []*Client{client(refused.URL + "/dir"), client(ca.Directory)}, req)
	if err == nil || !strings.Contains(err.Error(), "unauthorized") || strings.Contains(err.Error(), ca.Directory) {
		t.Errorf("a refusal must not fall back: %v", err)
	}
}

// Revocation through the account that ordered the certificate.
func TestRevoke(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	solver := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer solver.Close()
	c := testClient(t, ca, solver)
	cert, err := c.Obtain(context.Background(), Request{Domains: []string{"revoke.example.test"}, Listen: "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(context.Background(), cert.Cert, RevocationReasons["keyCompromise"]); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(context.Background(), cert.Cert, 0); err == nil || !strings.Contains(err.Error(), "alreadyRevoked") {
		t.Errorf("second revocation: %v", err)
	}
}

func parseCert(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	return parseCerts(t, p)[0]
}

func parseCerts(t *testing.T, p []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, p = pem.Decode(p)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("no certificate in PEM")
	}
	return out
}
