package acme

import (
	"io"
	"net/http"
	"strings"
	"testing"
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
			resp, err := challengePoll{fakeTransport{tc.body, tc.retryAfter}}.RoundTrip(req)
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
