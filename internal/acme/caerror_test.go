package acme

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"

	"github.com/renewer/renewer/internal/testca"
)

// A failed HTTP-01 validation is reported within seconds in the CA's own
// words (problem type and detail), against both real CAs: step-ca keeps
// the failed challenge pending with its error attached (renewer reads it
// there instead of polling out lego's 100 s), Pebble marks it invalid.
// Two failures: nothing listens on the validation port, and a web server
// that answers 404 for the webroot's files (it serves another directory).
func TestFailedChallengeInTheCAsWords(t *testing.T) {
	t.Parallel()
	// 15 s is the bound users were promised; a correctness bound, not a benchmark.
	const bound = 15 * time.Second
	for _, kind := range []string{testca.KindPebble, testca.KindStepCA} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			var ca *testca.CA
			if kind == testca.KindStepCA {
				ca = testca.StartStepCAT(t, testca.Options{})
			} else {
				ca = testca.StartT(t, testca.Options{})
			}
			addr := "127.0.0.1:" + strconv.Itoa(ca.HTTPPort)
			for _, tc := range []struct {
				name   string
				serve  bool     // a web server on the validation port, serving another directory
				detail []string // what the CA's detail says, per CA
			}{
				{"nothing listening", false, []string{"could not connect", "connection refused"}},
				{"webroot answers 404", true, []string{"could not connect", "404"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if tc.serve {
						l, err := net.Listen("tcp", addr)
						if err != nil {
							t.Fatal(err)
						}
						srv := &http.Server{Handler: http.FileServer(http.Dir(t.TempDir())), ReadHeaderTimeout: 5 * time.Second}
						go func() { _ = srv.Serve(l) }()
						defer srv.Close()
					}
					c := testClient(t, ca, nil)
					if err := c.Register(context.Background()); err != nil {
						t.Fatal(err)
					}
					start := time.Now()
					_, err := c.Obtain(context.Background(), Request{Domains: []string{"fail.example.test"}, Webroot: t.TempDir()})
					elapsed := time.Since(start)
					t.Logf("after %s: %v", elapsed.Round(time.Millisecond), err)
					if err == nil {
						t.Fatal("obtained a certificate without a working challenge")
					}
					if elapsed > bound {
						t.Errorf("failure reported after %s, want within %s", elapsed, bound)
					}
					typ, detail := caProblem(t, err)
					if !strings.HasPrefix(typ, "urn:ietf:params:acme:error:") {
						t.Errorf("problem type %q", typ)
					}
					idx := 0
					if kind == testca.KindPebble {
						idx = 1
					}
					if !strings.Contains(detail, tc.detail[idx]) {
						t.Errorf("detail %q, want it to say %q", detail, tc.detail[idx])
					}
					if msg := err.Error(); !strings.Contains(msg, typ) || !strings.Contains(msg, detail) {
						t.Errorf("message %q does not name the CA's type and detail", msg)
					}
				})
			}
		})
	}
}

// caProblem returns the CA's problem type and detail carried by err.
func caProblem(t *testing.T, err error) (string, string) {
	t.Helper()
	var ce *ChallengeError
	if errors.As(err, &ce) {
		return ce.Type, ce.Detail
	}
	var pd *legoacme.ProblemDetails
	if errors.As(err, &pd) {
		return pd.Type, pd.Detail
	}
	t.Fatalf("no CA problem in %T: %v", err, err)
	return "", ""
}
