package acme

import (
	"bufio"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Pending tokens of FuzzHTTP01's solver, and their key authorizations.
var fuzzTokens = map[string]string{
	"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA": "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI",
	"LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0": "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI",
}

// FuzzHTTP01 sends the HTTP-01 handler arbitrary requests (method, request
// target, one header), parsed the way net/http's server parses them. The
// handler never panics; it answers 200 only to GET or HEAD of exactly
// /.well-known/acme-challenge/<pending token>, with that token's key
// authorization as text/plain; everything else gets 404 or 405 with a fixed
// body; no header or body ever carries the request's own bytes.
func FuzzHTTP01(f *testing.F) {
	tok := "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
	for _, s := range []struct{ method, target, name, value string }{
		{"GET", "/.well-known/acme-challenge/" + tok, "User-Agent", "Mozilla/5.0 (compatible; Let's Encrypt validation server; +https://www.letsencrypt.org)"},
		{"HEAD", "/.well-known/acme-challenge/" + tok, "Accept", "*/*"},
		{"POST", "/.well-known/acme-challenge/" + tok, "Content-Length", "0"},
		{"GET", "/.well-known/acme-challenge/unknown-token", "Accept", "*/*"},
		{"GET", "/.well-known/acme-challenge/", "X", "y"},
		{"GET", "/.well-known/acme-challenge/../acme-challenge/" + tok, "X", "y"},
		{"GET", "/.well-known/acme-challenge/%65vaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", "X", "y"},
		{"GET", "/.well-known%2Facme-challenge/" + tok, "X", "y"},
		{"GET", "//.well-known/acme-challenge/" + tok, "X", "y"},
		{"GET", "http://example.test/.well-known/acme-challenge/" + tok + "?x=<script>", "X", "y"},
		{"GET", "/.well-known/acme-challenge/" + tok + "/", "X", "y"},
		{"GET", "/<script>alert(1)</script>", "Referer", "<script>alert(1)</script>"},
		{"OPTIONS", "*", "X", "y"},
		{"CONNECT", "example.test:80", "X", "y"},
	} {
		f.Add(s.method, s.target, s.name, s.value)
	}

	h := NewHTTPSolver(slog.New(slog.DiscardHandler))
	defer h.Close()
	for t, ka := range fuzzTokens {
		h.tokens[t] = ka // pending, as Present leaves them (without a listener)
	}
	notFound := httptest.NewRecorder()
	http.NotFound(notFound, httptest.NewRequest("GET", "/", nil))

	f.Fuzz(func(t *testing.T, method, target, name, value string) {
		raw := method + " " + target + " HTTP/1.1\r\nHost: example.test\r\n" + name + ": " + value + "\r\n\r\n"
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // the server answers 400 before any handler runs
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body := w.Body.String()

		switch w.Code {
		case http.StatusOK:
			token, ok := strings.CutPrefix(r.URL.EscapedPath(), "/.well-known/acme-challenge/")
			ka, pending := fuzzTokens[token]
			if !ok || !pending || (r.Method != "GET" && r.Method != "HEAD") {
				t.Fatalf("200 to %s %q (path %q)", r.Method, target, r.URL.EscapedPath())
			}
			if body != ka {
				t.Fatalf("200 to %s %q with body %q, want the key authorization %q", r.Method, target, body, ka)
			}
			if ct := w.Header().Get("Content-Type"); ct != "text/plain" {
				t.Fatalf("200 with Content-Type %q", ct)
			}
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			if body != notFound.Body.String() && body != "" {
				t.Fatalf("%d to %s %q with body %q", w.Code, r.Method, target, body)
			}
			for k, vs := range w.Header() {
				for _, v := range vs {
					if v != notFound.Header().Get(k) && !(k == "Allow" && v == "GET, HEAD") {
						t.Fatalf("%d to %s %q with header %s: %q", w.Code, r.Method, target, k, v)
					}
				}
			}
		default:
			t.Fatalf("%d to %s %q", w.Code, r.Method, target)
		}
	})
}
