package acme

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// challengePoll is the transport of renewer's lego clients. When the CA's
// answer to accepting a challenge names no Retry-After (Let's Encrypt's
// never does), it adds "Retry-After: 1", so lego looks at the authorization
// again after about a second instead of its default 5 s (±50%), then backs
// off exponentially as before (giving up after 100 s instead of 500 s).
// Validation usually takes a second or two, so that wait was most of an
// issuance; certbot polls every second too. A CA that does send Retry-After
// is left alone.
type challengePoll struct{ base http.RoundTripper }

func (t challengePoll) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost || resp.StatusCode != http.StatusOK ||
		resp.Header.Get("Retry-After") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	// A challenge object (RFC 8555 §8) has a token and a URL; orders,
	// authorizations and accounts have neither.
	var ch struct{ Type, URL, Token, Status string }
	if json.Unmarshal(body, &ch) == nil && ch.Type != "" && ch.URL != "" && ch.Token != "" &&
		(ch.Status == "pending" || ch.Status == "processing") {
		resp.Header.Set("Retry-After", "1")
	}
	return resp, nil
}
