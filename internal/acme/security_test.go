package acme

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v4/challenge/tlsalpn01"

	"github.com/renewer/renewer/internal/testca"
)

// rawGet sends one request line exactly as written (no client-side path
// cleaning) and returns the status code.
func rawGet(t *testing.T, addr, method, target string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: a.example.test\r\nConnection: close\r\n\r\n", method, target)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func solverAddr(t *testing.T, h *HTTPSolver) string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.servers {
		return l.addr.String()
	}
	t.Fatal("no listener")
	return ""
}

// The standalone HTTP-01 server answers the pending token and nothing
// else: unknown tokens, other paths, the directory itself, traversal and
// other methods all get 404.
func TestHTTPSolverAnswersOnlyPendingTokens(t *testing.T) {
	t.Parallel()
	h := NewHTTPSolver(nil)
	defer h.Close()
	p := h.Provider("127.0.0.1:0")
	if err := p.Present("a.example.test", "tok-EN_1", "tok-EN_1.thumb"); err != nil {
		t.Fatal(err)
	}
	addr := solverAddr(t, h)
	resp, err := http.Get("http://" + addr + "/.well-known/acme-challenge/tok-EN_1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "tok-EN_1.thumb" {
		t.Fatalf("pending token: %d %q", resp.StatusCode, body)
	}
	for _, target := range []string{
		"/.well-known/acme-challenge/unknown",
		"/.well-known/acme-challenge/",
		"/.well-known/acme-challenge",
		"/.well-known/",
		"/",
		"/etc/passwd",
		"/.well-known/acme-challenge/../x",
		"/.well-known/acme-challenge/../../etc/passwd",
		"/.well-known/acme-challenge/%2e%2e/x",
		"/.well-known/acme-challenge/tok-EN_1/",
		"/.well-known/acme-challenge/tok-EN_1/..",
		"/.well-known/acme-challenge/./tok-EN_1",
		"/x/../.well-known/acme-challenge/tok-EN_1",
		"http://evil.example/.well-known/acme-challenge/unknown",
	} {
		if code := rawGet(t, addr, "GET", target); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", target, code)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		if code := rawGet(t, addr, m, "/.well-known/acme-challenge/tok-EN_1"); code != http.StatusNotFound {
			t.Errorf("%s pending token: %d, want 404", m, code)
		}
	}
	// A token that is not base64url is refused before anything is served.
	if err := p.Present("a.example.test", "../x", "k"); err == nil {
		t.Error("a token with a path in it was accepted")
	}
	// Once cleaned up, the token is gone too.
	if err := p.CleanUp("a.example.test", "tok-EN_1", ""); err != nil {
		t.Fatal(err)
	}
	if err := h.Provider("127.0.0.1:0").Present("b.example.test", "other", "other.k"); err != nil {
		t.Fatal(err)
	}
	if code := rawGet(t, solverAddr(t, h), "GET", "/.well-known/acme-challenge/tok-EN_1"); code != http.StatusNotFound {
		t.Errorf("cleaned-up token: %d, want 404", code)
	}
}

// The server's limits are set: a slowloris client is cut off, oversized
// headers are refused with 431.
func TestHTTPSolverLimits(t *testing.T) {
	t.Parallel()
	srv := NewHTTPSolver(nil).newChallengeServer()
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Errorf("timeouts not all set: header %s read %s write %s idle %s", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
	if srv.MaxHeaderBytes != 8<<10 {
		t.Errorf("MaxHeaderBytes = %d, want 8 KiB", srv.MaxHeaderBytes)
	}

	h := NewHTTPSolver(nil)
	h.readHeaderTimeout = 500 * time.Millisecond
	defer h.Close()
	if err := h.Provider("127.0.0.1:0").Present("a.example.test", "tok", "tok.k"); err != nil {
		t.Fatal(err)
	}
	addr := solverAddr(t, h)

	// Oversized headers: 431.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 64<<10))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	conn.Close()
	if err != nil {
		t.Fatalf("oversized headers: %v", err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized headers: %d, want 431", resp.StatusCode)
	}

	// Slowloris: one header byte every 100 ms never completes a request;
	// the server closes the connection after its header timeout.
	conn, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		buf := make([]byte, 1024)
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			if _, err := conn.Read(buf); err != nil {
				closed <- time.Since(start)
				return
			}
		}
	}()
	fmt.Fprint(conn, "GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a\r\n")
	header := "X-Slow: " + strings.Repeat("s", 200)
	var took time.Duration
trickle:
	for i := 0; ; i++ {
		select {
		case took = <-closed:
			break trickle
		case <-time.After(100 * time.Millisecond):
			if _, err := conn.Write([]byte{header[i%len(header)]}); err != nil {
				took = <-closed
				break trickle
			}
		}
	}
	if took > 5*time.Second {
		t.Errorf("slow client kept its connection for %s (header timeout 500ms)", took)
	}
	// The server is still there for the validator.
	if code := rawGet(t, addr, "GET", "/.well-known/acme-challenge/tok"); code != 200 {
		t.Errorf("after the slow client: %d", code)
	}
}

// The TLS-ALPN-01 server hands a challenge certificate only to a client
// that offers acme-tls/1 for a pending name, and cuts off a client that
// never completes its handshake.
func TestTLSALPNSolverOnlyPending(t *testing.T) {
	t.Parallel()
	s := NewTLSALPNSolver(nil)
	s.handshakeTimeout = 500 * time.Millisecond
	defer s.Close()
	if err := s.Provider("127.0.0.1:0").Present("a.example.test", "tok", "tok.k"); err != nil {
		t.Fatal(err)
	}
	var addr string
	s.mu.Lock()
	for _, l := range s.servers {
		addr = l.ln.Addr().String()
	}
	s.mu.Unlock()
	dial := func(sni string, protos []string) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{ServerName: sni, NextProtos: protos, InsecureSkipVerify: true}) //nolint:gosec // a challenge certificate is self-signed
		if err != nil {
			return err // the handshake failed: no certificate handed out
		}
		conn.Close()
		return nil
	}
	conn0, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "a.example.test", NextProtos: []string{tlsalpn01.ACMETLS1Protocol}, InsecureSkipVerify: true}) //nolint:gosec // self-signed challenge certificate
	if err != nil {
		t.Fatalf("pending name with acme-tls/1: %v", err)
	}
	if got := conn0.ConnectionState().NegotiatedProtocol; got != tlsalpn01.ACMETLS1Protocol {
		t.Errorf("negotiated %q", got)
	}
	conn0.Close()
	if err := dial("b.example.test", []string{tlsalpn01.ACMETLS1Protocol}); err == nil {
		t.Error("a name with no pending challenge got a certificate")
	}
	if err := dial("a.example.test", nil); err == nil {
		t.Error("a client without ALPN got the challenge certificate")
	}
	if err := dial("a.example.test", []string{"h2", "http/1.1"}); err == nil {
		t.Error("a client offering only h2/http1.1 got the challenge certificate")
	}
	// A client that connects and says nothing is disconnected.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("silent client: read %v after %s, want the server to close it after 500ms", err, time.Since(start))
	}
}

// Webroot: the answer goes to <webroot>/.well-known/acme-challenge/<token>
// (0644) and is removed afterwards; nothing is written outside the webroot,
// whether by a token with a path in it or through a symbolic link.
func TestWebrootStaysInside(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	webroot, outside := filepath.Join(base, "www"), filepath.Join(base, "outside")
	for _, d := range []string{webroot, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p, err := newWebrootProvider(webroot)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(webroot, ".well-known", "acme-challenge", "tok_1-A")
	if err := p.Present("a.example.test", "tok_1-A", "tok_1-A.thumb"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "tok_1-A.thumb" {
		t.Fatalf("challenge file: %q, %v", b, err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o644 {
		t.Errorf("challenge file mode %o, want 644", fi.Mode().Perm())
	}
	if err := p.CleanUp("a.example.test", "tok_1-A", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("challenge file left after cleanup: %v", err)
	}

	for _, tok := range []string{"../x", "../../outside/x", "a/b", "..", ""} {
		if err := p.Present("a.example.test", tok, "k"); err == nil {
			t.Errorf("token %q accepted", tok)
		}
	}

	// .well-known or acme-challenge as a link out of the webroot: refused.
	escape := func(link string) {
		t.Helper()
		if err := os.RemoveAll(filepath.Join(webroot, ".well-known")); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, link); err != nil {
			t.Fatal(err)
		}
		err := p.Present("a.example.test", "tok2", "tok2.k")
		if err == nil || !strings.Contains(err.Error(), "symbolic link leads out of the webroot") {
			t.Errorf("%s -> outside: err = %v", link, err)
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Errorf("%s -> outside: wrote %v outside the webroot", link, entries)
		}
	}
	escape(filepath.Join(webroot, ".well-known"))
	escape(filepath.Join(webroot, ".well-known", "acme-challenge"))

	// A link that stays inside the webroot is fine.
	if err := os.RemoveAll(filepath.Join(webroot, ".well-known")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(webroot, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("shared", filepath.Join(webroot, ".well-known")); err != nil {
		t.Fatal(err)
	}
	if err := p.Present("a.example.test", "tok3", "tok3.k"); err != nil {
		t.Fatalf("link inside the webroot: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(webroot, "shared", "acme-challenge", "tok3")); string(b) != "tok3.k" {
		t.Errorf("through an inside link: %q", b)
	}
	if err := p.CleanUp("a.example.test", "tok3", ""); err != nil {
		t.Fatal(err)
	}
}

// The ACME connection is verified: a CA whose TLS root is not trusted
// fails with an error naming the certificate problem; with the root given
// as ca_bundle the same CA works.
func TestACMETLSVerified(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	solver := NewHTTPSolver(nil)
	defer solver.Close()
	req := Request{Domains: []string{"trust.example.test"}, Listen: "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)}

	untrusted, err := New(Options{Directory: ca.Directory, AcceptTerms: true, AccountDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)}, solver)
	if err != nil {
		t.Fatal(err)
	}
	_, err = untrusted.Obtain(context.Background(), req)
	if err == nil {
		t.Fatal("obtained from a CA whose TLS certificate is not trusted")
	}
	for _, want := range []string{"certificate signed by unknown authority", "ca_bundle", ca.Directory} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}

	trusted := testClient(t, ca, solver) // ca_bundle = Pebble's root
	if _, err := trusted.Obtain(context.Background(), req); err != nil {
		t.Fatalf("with ca_bundle: %v", err)
	}
}

// InsecureSkipVerify appears in no program source but the two that read a
// served certificate to judge it themselves (watch: expiry and chain are
// checked by watch.Verify afterwards; verify: the served leaf is compared
// byte for byte with the installed one). Nothing that talks to a CA, a
// webhook or an SMTP server turns verification off.
func TestInsecureSkipVerifyOnlyWhereJustified(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	allowed := []string{"internal/watch/watch.go", "internal/verify/verify.go"}
	var found []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		ast.Inspect(f, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && id.Name == "InsecureSkipVerify" {
				found = append(found, filepath.ToSlash(rel))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		if !slices.Contains(allowed, f) {
			t.Errorf("%s sets InsecureSkipVerify", f)
		}
	}
	for _, a := range allowed {
		if !slices.Contains(found, a) {
			t.Logf("%s no longer uses InsecureSkipVerify: drop it from the list", a)
		}
	}
}

// A DNS provider's errors lose the certificate's credentials: providers
// that put their key in a URL quote it in net/http errors.
func TestDNSProviderErrorsScrubbed(t *testing.T) {
	s := newScrubber(map[string]string{
		"DREAMHOST_API_KEY":    "k3y/with+chars",
		"DNSUPDATE_NAMESERVER": "127.0.0.1:53",
		"X_TOKEN":              "abc", // too short to scrub safely
	})
	inner := fmt.Errorf("unable to communicate: Get \"https://api.example/?key=%s&cmd=x\": dial tcp 127.0.0.1:53: refused; raw k3y/with+chars, path k3y%%2Fwith+chars",
		"k3y%2Fwith%2Bchars")
	err := s.wrap(inner)
	for _, leak := range []string{"k3y/with+chars", "k3y%2Fwith%2Bchars", "k3y%2Fwith+chars"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("scrubbed error still shows %q: %v", leak, err)
		}
	}
	if !strings.Contains(err.Error(), "127.0.0.1:53") || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("scrubbed too much or nothing: %v", err)
	}
	if !errors.Is(err, inner) {
		t.Error("the scrubbed error does not unwrap to the provider's")
	}
	if clean := errors.New("no secret here"); s.wrap(clean) != clean {
		t.Error("an error without secrets was rewrapped")
	}
}
