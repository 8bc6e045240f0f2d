package acme

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// challengePoll is the transport of renewer's lego clients. It does two
// things lego v4 does not:
//
// When the CA's answer to accepting a challenge names no Retry-After (Let's
// Encrypt's never does), it adds "Retry-After: 1", so lego looks at the
// authorization again after about a second instead of its default 5 s
// (±50%), then backs off exponentially as before (giving up after 100 s
// instead of 500 s). Validation usually takes a second or two, so that wait
// was most of an issuance; certbot polls every second too. A CA that does
// send Retry-After is left alone.
//
// When a challenge the CA has not validated carries an error (RFC 8555 §8:
// the CA tried and failed), it ends the wait with that error, in the CA's
// words (a *ChallengeError). lego looks only at the status, and some CAs
// (step-ca) keep a failed challenge "pending" with the error attached, so
// lego would poll for 100 s and then report only the status. A "pending"
// challenge with an error is final for renewer: the CA will not try again
// unless the client posts the challenge once more (RFC 8555 §8.2), which
// renewer leaves to the next attempt of its own schedule. A "processing"
// challenge with an error is one the CA is retrying by itself: it is given
// processingGrace before the error is reported.
//
// Only challenges this client accepted (posted "{}" to) are judged: a
// pending challenge of a reused authorization may carry the error of an
// earlier attempt, which the next accept replaces.
type challengePoll struct {
	base     http.RoundTripper
	now      func() time.Time // nil: time.Now
	seen     *sync.Map        // challenge URL -> time.Time its error was first seen while processing; nil: no grace
	accepted *sync.Map        // challenge URLs this client accepted; nil: judge every challenge
}

// processingGrace is how long a challenge the CA keeps "processing" with an
// error attached (the CA retrying it itself) is waited for.
const processingGrace = 10 * time.Second

func newChallengePoll(base http.RoundTripper, now func() time.Time) challengePoll {
	return challengePoll{base: base, now: now, seen: &sync.Map{}, accepted: &sync.Map{}}
}

// ChallengeError is the error a CA attached to a challenge it could not
// validate: its problem type and detail, as the CA wrote them.
type ChallengeError struct {
	Identifier  string // the name or IP address being validated
	Challenge   string // http-01, dns-01, tls-alpn-01
	Status      string // the challenge's status when the error was read
	Type        string // urn:ietf:params:acme:error:...
	Detail      string
	Subproblems []string // "type: detail" of each subproblem, if any
}

func (e *ChallengeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the CA could not validate the %s challenge", e.Challenge)
	if e.Identifier != "" {
		fmt.Fprintf(&b, " for %s", e.Identifier)
	}
	fmt.Fprintf(&b, ": %s: %s", e.Type, e.Detail)
	for _, s := range e.Subproblems {
		b.WriteString("; " + s)
	}
	fmt.Fprintf(&b, " (challenge %s at the CA)", e.Status)
	return b.String()
}

// problem is an RFC 7807 problem document as ACME uses it.
type problem struct {
	Type        string `json:"type"`
	Detail      string `json:"detail"`
	Subproblems []struct {
		Type       string `json:"type"`
		Detail     string `json:"detail"`
		Identifier struct{ Value string }
	} `json:"subproblems"`
}

type challengeObj struct {
	Type, URL, Token, Status string
	Error                    *problem `json:"error"`
}

// accepting reports whether req posts "{}" (base64url "e30"), which is how
// a client accepts a challenge (RFC 8555 §7.5.1); POST-as-GET posts "".
func accepting(req *http.Request) bool {
	if req.Method != http.MethodPost || req.GetBody == nil {
		return false
	}
	body, err := req.GetBody()
	if err != nil {
		return false
	}
	defer body.Close()
	var jws struct {
		Payload string `json:"payload"`
	}
	return json.NewDecoder(io.LimitReader(body, 1<<16)).Decode(&jws) == nil && jws.Payload == "e30"
}

func (t challengePoll) RoundTrip(req *http.Request) (*http.Response, error) {
	accept := t.accepted != nil && accepting(req)
	resp, err := t.base.RoundTrip(req)
	if err != nil || req.Method != http.MethodPost || resp.StatusCode != http.StatusOK ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	// A challenge object (RFC 8555 §8) has a token and a URL; orders,
	// authorizations and accounts have neither. An authorization has an
	// identifier and its challenges.
	var obj struct {
		challengeObj
		Identifier struct{ Value string }
		Challenges []challengeObj
	}
	if json.Unmarshal(body, &obj) != nil {
		return resp, nil
	}
	isChallenge := obj.Type != "" && obj.URL != "" && obj.Token != ""
	if isChallenge {
		if accept {
			t.accepted.Store(obj.URL, true)
			t.seen.Delete(obj.URL) // a new attempt: a new grace
		}
		if cerr := t.failed(obj.challengeObj, ""); cerr != nil {
			return nil, cerr
		}
		if resp.Header.Get("Retry-After") == "" && (obj.Status == "pending" || obj.Status == "processing") {
			resp.Header.Set("Retry-After", "1")
		}
		return resp, nil
	}
	if obj.Identifier.Value != "" && (obj.Status == "pending" || obj.Status == "processing") {
		for _, ch := range obj.Challenges {
			if cerr := t.failed(ch, obj.Identifier.Value); cerr != nil {
				return nil, cerr
			}
		}
	}
	return resp, nil
}

// failed returns the CA's error on ch when it is final (see challengePoll).
func (t challengePoll) failed(ch challengeObj, identifier string) *ChallengeError {
	if ch.Status == "valid" && t.accepted != nil {
		t.accepted.Delete(ch.URL)
		t.seen.Delete(ch.URL)
	}
	if ch.Error == nil || (ch.Error.Type == "" && ch.Error.Detail == "") {
		return nil
	}
	if t.accepted != nil {
		if _, ok := t.accepted.Load(ch.URL); !ok {
			return nil // not accepted by this client (yet): an earlier attempt's error
		}
	}
	switch ch.Status {
	case "pending":
	case "processing":
		if t.seen == nil {
			return nil
		}
		now := time.Now
		if t.now != nil {
			now = t.now
		}
		first, _ := t.seen.LoadOrStore(ch.URL, now())
		if now().Sub(first.(time.Time)) < processingGrace {
			return nil
		}
	default: // valid; invalid is reported by lego itself, with the error
		if t.accepted != nil {
			t.accepted.Delete(ch.URL)
			t.seen.Delete(ch.URL)
		}
		return nil
	}
	e := &ChallengeError{Identifier: identifier, Challenge: ch.Type, Status: ch.Status, Type: ch.Error.Type, Detail: ch.Error.Detail}
	for _, s := range ch.Error.Subproblems {
		sub := s.Type + ": " + s.Detail
		if s.Identifier.Value != "" {
			sub = s.Identifier.Value + ": " + sub
		}
		e.Subproblems = append(e.Subproblems, sub)
	}
	return e
}
