// Package watchtest serves certificates over real TLS on loopback, for tests
// of watches. Nothing in the renewer binary imports it.
package watchtest

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/certinfo/certtest"
)

// Server is a TLS server on 127.0.0.1 presenting one certificate.
type Server struct {
	Endpoint string       // 127.0.0.1:port
	CA       *certtest.CA // the issuer of the certificate served
	CAFile   string       // CA's certificate as a PEM file, for ca_bundle
	Close    func()       // stops it before the test ends
}

// Serve starts a TLS server presenting certificates issued with opts, all
// by one CA (a fresh one unless opts[0].CA is set); it picks the certificate
// by SNI, the first when none matches. It stops when the test ends.
func Serve(t testing.TB, opts ...certtest.Options) *Server {
	t.Helper()
	ca := opts[0].CA
	if ca == nil {
		ca = certtest.NewCA(t, "watchtest CA")
	}
	var pairs []tls.Certificate
	for _, o := range opts {
		o.CA = ca
		full, key := certtest.Issue(t, o)
		pair, err := tls.X509KeyPair(full, key)
		if err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, pair)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("hello\n"))
	}))
	srv.TLS = &tls.Config{Certificates: pairs}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // clients hang up after the handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &Server{Endpoint: strings.TrimPrefix(srv.URL, "https://"), CA: ca, CAFile: caFile, Close: srv.Close}
}
