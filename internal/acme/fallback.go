package acme

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
)

// caTransport marks errors of reaching the CA itself (connection refused,
// TLS failure, timeout), so they can be told apart from a DNS provider's or
// a validation's network errors.
type caTransport struct{ rt http.RoundTripper }

func (t caTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err != nil {
		return nil, &UnreachableError{URL: r.URL.String(), Err: err}
	}
	return resp, nil
}

// UnreachableError is a request that never got an answer from the CA.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string { return "CA unreachable: " + e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// lego reports a non-problem error status as "503 ::GET :: url :: ...".
var statusRE = regexp.MustCompile(`(^|\s)(5\d\d|429) ?::\s?(GET|POST|HEAD) ::`)

// Unavailable reports whether err means the CA could not serve the order:
// unreachable, a server error, or a rate limit. Another CA may succeed where
// this one failed; for any other error (a failed challenge, a refused
// account, bad settings) trying another CA would fail the same way.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var unreachable *UnreachableError
	var limited *legoacme.RateLimitedError
	if errors.As(err, &unreachable) || errors.As(err, &limited) {
		return true
	}
	var prob *legoacme.ProblemDetails
	if errors.As(err, &prob) {
		return prob.HTTPStatus >= 500 || prob.HTTPStatus == http.StatusTooManyRequests ||
			prob.Type == "urn:ietf:params:acme:error:serverInternal" || prob.Type == legoacme.RateLimitedErr
	}
	return statusRE.MatchString(err.Error())
}

// ObtainFrom orders req from clients in turn: the next one is tried only
// when the previous one is Unavailable. The certificate says which
// directory issued it.
func ObtainFrom(ctx context.Context, log *slog.Logger, clients []*Client, req Request) (*Certificate, error) {
	if len(clients) == 0 {
		return nil, errors.New("acme: no CA configured")
	}
	var errs []error
	for i, c := range clients {
		if i > 0 && req.CAA != nil {
			if why := c.caaForbids(ctx, req.CAA); why != nil {
				err := fmt.Errorf("%s: skipped: %w", c.opts.Directory, why)
				errs = append(errs, err)
				if log != nil {
					log.Warn("skipping a fallback CA that the names' CAA records forbid", "directory", c.opts.Directory, "why", why)
				}
				if i == len(clients)-1 {
					break
				}
				continue
			}
		}
		r := req
		if r.ReplacesAt != c.opts.Directory {
			r.Replaces = "" // another CA's certificate: unknown here
		}
		cert, err := c.Obtain(ctx, r)
		if err == nil {
			if i > 0 && log != nil {
				log.Warn("certificate issued by a fallback CA", "directory", c.opts.Directory, "tried", i+1)
			}
			return cert, nil
		}
		if len(clients) > 1 {
			err = fmt.Errorf("%s: %w", c.opts.Directory, err)
		}
		errs = append(errs, err)
		if ctx.Err() != nil || !Unavailable(err) || i == len(clients)-1 {
			break
		}
		if log != nil {
			log.Warn("CA unavailable; trying the next one", "directory", c.opts.Directory, "next", clients[i+1].opts.Directory, "err", err)
		}
	}
	return nil, errors.Join(errs...)
}

// caaForbids asks check whether the names' CAA records forbid this CA (by
// the caaIdentities its directory lists). A CA that lists none, or whose
// directory cannot be read, is not known to be forbidden: it is tried.
func (c *Client) caaForbids(ctx context.Context, check func(context.Context, []string) error) error {
	ids, err := c.CAAIdentities()
	if err != nil || len(ids) == 0 {
		return nil
	}
	return check(ctx, ids)
}

// CAAIdentities returns the domain names the CA recognizes in CAA records
// (its directory's meta.caaIdentities, RFC 8555 §9.7.6); none when it
// lists none.
func (c *Client) CAAIdentities() ([]string, error) {
	m, err := c.meta()
	if err != nil {
		return nil, err
	}
	return m.CAAIdentities, nil
}

// Directory is the client's ACME directory URL.
func (c *Client) Directory() string { return c.opts.Directory }

// checkProfile makes sure the CA's directory lists profile.
func (c *Client) checkProfile(profile string) error {
	offered, err := c.Profiles()
	if err != nil {
		return err
	}
	if _, ok := offered[profile]; !ok {
		names := make([]string, 0, len(offered))
		for n := range offered {
			names = append(names, n)
		}
		slices.Sort(names)
		if len(names) == 0 {
			return fmt.Errorf("acme: profile %q: %s offers no profiles", profile, c.opts.Directory)
		}
		return fmt.Errorf("acme: profile %q is not offered by %s (it offers %s)", profile, c.opts.Directory, strings.Join(names, ", "))
	}
	return nil
}

// Profiles returns the profiles the CA's directory lists (name ->
// description). lego does not expose them, so the directory is read here.
func (c *Client) Profiles() (map[string]string, error) {
	m, err := c.meta()
	if err != nil {
		return nil, err
	}
	return m.Profiles, nil
}

type directoryMeta struct {
	Profiles      map[string]string `json:"profiles"`
	CAAIdentities []string          `json:"caaIdentities"`
}

// meta reads the directory's meta object.
func (c *Client) meta() (directoryMeta, error) {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: c.transport}
	req, err := http.NewRequest(http.MethodGet, c.opts.Directory, nil)
	if err != nil {
		return directoryMeta{}, err
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := hc.Do(req)
	if err != nil {
		return directoryMeta{}, directoryError(c.opts.Directory, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return directoryMeta{}, fmt.Errorf("acme directory %s: %s", c.opts.Directory, resp.Status)
	}
	var dir struct {
		Meta directoryMeta `json:"meta"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
		return directoryMeta{}, fmt.Errorf("acme directory %s: %w", c.opts.Directory, err)
	}
	return dir.Meta, nil
}

// refusedNewOrder reports whether err is the CA's refusal of the new-order
// request itself (a problem document from the directory's newOrder URL,
// other than a rate limit), as opposed to a failure later in the order.
func (c *Client) refusedNewOrder(err error) bool {
	var pd *legoacme.ProblemDetails
	if !errors.As(err, &pd) || pd.Type == legoacme.RateLimitedErr || pd.URL == "" {
		return false
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: c.transport}
	resp, derr := hc.Get(c.opts.Directory)
	if derr != nil {
		return false
	}
	defer resp.Body.Close()
	var dir struct {
		NewOrder string `json:"newOrder"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&dir) != nil {
		return false
	}
	return dir.NewOrder != "" && pd.URL == dir.NewOrder
}
