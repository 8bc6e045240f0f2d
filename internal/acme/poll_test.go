package acme

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type fakeTransport struct {
	body, retryAfter string
}

func (f fakeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := http.Header{"Content-Type": {"application/json"}}
	if f.retryAfter != "" {
		h.Set("Retry-After", f.retryAfter)
	}
	return &http.Response{StatusCode: http.StatusOK, Header: h, Body: io.NopCloser(strings.NewReader(f.body)), Request: req}, nil
}

func TestChallengePoll(t *testing.T) {
	const chall = `{"type":"http-01","url":"https://ca/chall/1","token":"tok","status":"processing"}`
	for _, tc := range []struct {
		name, method, body, retryAfter, want string
	}{
		{"challenge without Retry-After", http.MethodPost, chall, "", "1"},
		{"pending challenge", http.MethodPost, strings.Replace(chall, "processing", "pending", 1), "", "1"},
		{"the CA's Retry-After is kept", http.MethodPost, chall, "7", "7"},
		{"valid challenge", http.MethodPost, strings.Replace(chall, "processing", "valid", 1), "", ""},
		{"order", http.MethodPost, `{"status":"processing","identifiers":[{"type":"dns","value":"a.test"}],"finalize":"https://ca/f"}`, "", ""},
		{"authorization", http.MethodPost, `{"status":"pending","identifier":{"type":"dns","value":"a.test"},"challenges":[` + chall + `]}`, "", ""},
		{"GET", http.MethodGet, chall, "", ""},
		{"not JSON", http.MethodPost, "<html>", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "https://ca/chall/1", nil)
			resp, err := challengePoll{base: fakeTransport{tc.body, tc.retryAfter}}.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Header.Get("Retry-After"); got != tc.want {
				t.Errorf("Retry-After = %q, want %q", got, tc.want)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != tc.body {
				t.Errorf("body changed: %q", b)
			}
		})
	}
}

// A challenge the CA tried and failed, reported in the CA's words: at once
// when it stays pending (step-ca), after a grace when the CA keeps
// retrying it ("processing"); never when valid or invalid (lego reports
// invalid itself).
func TestChallengePollReportsCAError(t *testing.T) {
	const errJSON = `"error":{"type":"urn:ietf:params:acme:error:connection","detail":"The server could not connect to validation target","subproblems":[{"type":"urn:ietf:params:acme:error:dns","detail":"no A record","identifier":{"type":"dns","value":"a.test"}}]}`
	chall := func(status string) string {
		return `{"type":"http-01","url":"https://ca/chall/1","token":"tok","status":"` + status + `",` + errJSON + `}`
	}
	authz := func(status string) string {
		return `{"status":"pending","identifier":{"type":"dns","value":"a.test"},"challenges":[` + chall(status) + `]}`
	}
	now := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	post := func(payload string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "https://ca/chall/1", strings.NewReader(`{"protected":"x","payload":"`+payload+`","signature":"y"}`))
		return req
	}
	const accept, asGet = "e30", ""
	for _, tc := range []struct {
		name, body string
		first      string        // the first request's payload: accept or POST-as-GET
		later      time.Duration // ask again this much later
		want       string        // "" for no error
	}{
		{"pending challenge", chall("pending"), accept, 0, "the CA could not validate the http-01 challenge: urn:ietf:params:acme:error:connection: The server could not connect to validation target; a.test: urn:ietf:params:acme:error:dns: no A record (challenge pending at the CA)"},
		{"pending authorization", authz("pending"), accept, 0, "the CA could not validate the http-01 challenge for a.test: urn:ietf:params:acme:error:connection"},
		{"an earlier attempt's error, not accepted yet", authz("pending"), asGet, 0, ""},
		{"processing, at first", chall("processing"), accept, 0, ""},
		{"processing, past the grace", chall("processing"), accept, processingGrace, "(challenge processing at the CA)"},
		{"valid", chall("valid"), accept, 0, ""},
		{"invalid", chall("invalid"), accept, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := now
			p := newChallengePoll(fakeTransport{tc.body, ""}, func() time.Time { return clock })
			if tc.body[1:7] == `"statu` && tc.first == accept {
				// An authorization is polled after the challenge was accepted.
				p.accepted.Store("https://ca/chall/1", true)
			}
			_, err := p.RoundTrip(post(tc.first))
			if tc.later > 0 {
				if err != nil {
					t.Fatalf("first look: %v", err)
				}
				clock = clock.Add(tc.later)
				_, err = p.RoundTrip(post(asGet))
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
