package acme

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/certcrypto"
	jose "github.com/go-jose/go-jose/v4"
)

// Account key rollover (RFC 8555 §7.3.5). lego v4 has no key change (its
// acme/api AccountService offers New, Get, Update and Deactivate), so the
// request is built here with go-jose, lego's own JWS library: an inner JWS
// signed by the new key (its jwk in the header, the keyChange URL, no
// nonce) whose payload names the account and the old key, sent as the
// payload of an outer JWS signed by the old key (kid = the account URL).
//
// The new key is written to key.next.pem (accountNextKeyFile) before the
// CA sees it and becomes key.pem only after the CA accepted it. A failure
// the CA answered leaves key.pem as it was; an answer that never came
// (a reset, a 5xx, a crash) is settled by asking the CA which key it knows
// (a newAccount lookup with onlyReturnExisting), now or at the next
// contact with the CA (resolvePendingLocked), so the account is never lost.

// accountNextKeyFile holds a new key while the CA has not (yet) been
// seen to accept it.
const accountNextKeyFile = "key.next.pem"

// RolloverOptions tune Client.Rollover.
type RolloverOptions struct {
	// NewKey makes the new account key; nil: one of the old key's type
	// (ECDSA on the same curve, RSA of the same size).
	NewKey func(old crypto.Signer) (crypto.Signer, error)
	// Before is called with the new key after it is saved as pending and
	// before the CA is asked; an error aborts the rollover (the pending
	// key is dropped, nothing was sent). The agent checks there that the
	// records depending on the key are published (dns-persist).
	Before func(ctx context.Context, k RolloverKey) error
	// Stage is called with the account as ExportAccount returns it with
	// the pending key, before the CA is asked (the fleet publishes it, so
	// that every node can settle a rollover its author did not finish);
	// an error aborts like Before's.
	Stage func(ctx context.Context, exported []byte) error
}

// RolloverKey describes an account key.
type RolloverKey struct {
	Account    string // the account URL (unchanged by a rollover)
	Thumbprint string // RFC 7638 SHA-256 thumbprint of the public key, base64url
}

// RolloverResult says what Rollover did.
type RolloverResult struct {
	Directory string
	Account   string // the account URL
	Old, New  string // the keys' thumbprints
	// Settled: the CA's answer was lost, and asking it showed that it had
	// accepted the new key.
	Settled bool
}

// ErrRolloverUnknown means the CA's answer to a key change never came and
// the CA could not be asked which key it knows: the new key is kept
// pending (key.next.pem) and settled at the next contact with the CA.
var ErrRolloverUnknown = errors.New("the outcome of the key change is unknown")

// Rollover replaces the account's key at the CA and then on disk. The
// account must be registered. Orders of this client wait while it runs;
// orders of other processes still holding the old key fail once and pick
// the new key up at their next attempt (the key file changed).
func (c *Client) Rollover(ctx context.Context, o RolloverOptions) (*RolloverResult, error) {
	return withContext(ctx, func() (*RolloverResult, error) { return c.rollover(ctx, o) })
}

func (c *Client) rollover(ctx context.Context, o RolloverOptions) (*RolloverResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadAccountLocked(); err != nil {
		return nil, err
	}
	acc := c.acc
	if acc.Registration == nil || acc.Registration.URI == "" {
		return nil, fmt.Errorf("acme: no account registered at %s in %s: nothing to roll over (renew once first)", c.opts.Directory, c.opts.AccountDir)
	}
	if _, err := os.Stat(filepath.Join(c.opts.AccountDir, accountNextKeyFile)); err == nil {
		return nil, fmt.Errorf("acme: an earlier key change at %s is not settled yet (%s); try again when the CA answers", c.opts.Directory, filepath.Join(c.opts.AccountDir, accountNextKeyFile))
	}
	old, ok := acc.key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("acme: account key of type %T cannot sign", acc.key)
	}
	mk := o.NewKey
	if mk == nil {
		mk = newKeyLike
	}
	nk, err := mk(old)
	if err != nil {
		return nil, fmt.Errorf("acme: new account key: %w", err)
	}
	res := &RolloverResult{Directory: c.opts.Directory, Account: acc.Registration.URI, Old: Thumbprint(old.Public()), New: Thumbprint(nk.Public())}
	if res.Old == res.New {
		return nil, errors.New("acme: the new account key is the old one")
	}
	nextFile := filepath.Join(c.opts.AccountDir, accountNextKeyFile)
	newPEM := certcrypto.PEMEncode(nk)
	if err := c.opts.WriteFile.orDefault()(nextFile, newPEM, 0o600); err != nil {
		return nil, fmt.Errorf("acme: save the new account key: %w", err)
	}
	drop := func() { _ = os.Remove(nextFile) }
	if o.Before != nil {
		if err := o.Before(ctx, RolloverKey{Account: res.Account, Thumbprint: res.New}); err != nil {
			drop()
			return nil, err
		}
	}
	if o.Stage != nil {
		exp, err := ExportAccount(c.opts.AccountDir)
		if err == nil {
			err = o.Stage(ctx, exp)
		}
		if err != nil {
			drop()
			return nil, fmt.Errorf("acme: stage the new account key: %w", err)
		}
	}

	// Whatever the answer, the CA is asked which account the new key is
	// now: an answer can be lost after the CA acted, and a CA can answer
	// 200 without acting (Pebble v2.10.1 does when the new key belongs to
	// another account). Only the CA's own lookup commits the new key.
	sent, cerr := c.keyChange(acc, old, nk)
	if !sent { // the request never left: the CA cannot have acted on it
		drop()
		return nil, fmt.Errorf("acme: key change at %s not sent; the old key stays in use: %w", c.opts.Directory, cerr)
	}
	uri, lerr := c.lookupAccount(nk)
	switch {
	case lerr == nil && uri == res.Account:
		if cerr != nil {
			c.opts.Log.Warn("the CA's answer to the key change was lost, but it accepted the new key", "directory", c.opts.Directory, "err", cerr)
			res.Settled = true
		}
	case lerr == nil || errors.Is(lerr, errNoAccount):
		drop()
		why := "the CA does not know the new key"
		if lerr == nil {
			why = "the new key belongs to account " + uri
		}
		if cerr == nil {
			cerr = errors.New("the CA answered with success but did not change the key")
		}
		return nil, fmt.Errorf("acme: key change at %s refused (%s); the old key stays in use: %w", c.opts.Directory, why, cerr)
	default:
		if cerr == nil {
			cerr = errors.New("the CA answered with success")
		}
		return nil, fmt.Errorf("acme: key change at %s: %w: %w, and asking the CA which key it knows failed: %w; the new key is kept in %s and settled at the next contact with the CA",
			c.opts.Directory, ErrRolloverUnknown, cerr, lerr, nextFile)
	}
	if err := c.commitKeyLocked(nk, newPEM); err != nil {
		return nil, fmt.Errorf("acme: the CA accepted the new account key, but %w; it is kept in %s and taken at the next start", err, nextFile)
	}
	c.opts.Log.Debug("account key rolled over", "directory", c.opts.Directory, "account", res.Account, "old_key", res.Old, "new_key", res.New)
	return res, nil
}

// commitKeyLocked makes nk the account key, on disk then in memory; c.mu
// is held.
func (c *Client) commitKeyLocked(nk crypto.Signer, newPEM []byte) error {
	if err := c.opts.WriteFile.orDefault()(filepath.Join(c.opts.AccountDir, accountKeyFile), newPEM, 0o600); err != nil {
		return fmt.Errorf("saving it failed: %w", err)
	}
	if err := os.Remove(filepath.Join(c.opts.AccountDir, accountNextKeyFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.opts.Log.Warn("could not remove the settled pending account key", "err", err)
	}
	c.acc.key = nk
	c.orders = nil // their requests are signed with the old key
	c.stamp = stampAccount(c.opts.AccountDir)
	return nil
}

// resolvePendingLocked settles a key change left pending (key.next.pem) by
// an earlier rollover whose outcome was not seen: the CA is asked which
// account the pending key belongs to. c.mu is held and c.acc loaded.
func (c *Client) resolvePendingLocked() error {
	nextFile := filepath.Join(c.opts.AccountDir, accountNextKeyFile)
	raw, err := os.ReadFile(nextFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read pending account key: %w", err)
	}
	if c.acc.Registration == nil {
		return os.Remove(nextFile) // no account to have changed
	}
	k, err := certcrypto.ParsePEMPrivateKey(raw)
	nk, ok := k.(crypto.Signer)
	if err != nil || !ok {
		c.opts.Log.Warn("dropping an unreadable pending account key", "file", nextFile, "err", err)
		return os.Remove(nextFile)
	}
	uri, err := c.lookupAccount(nk)
	switch {
	case err == nil && uri == c.acc.Registration.URI:
		if err := c.commitKeyLocked(nk, raw); err != nil {
			return fmt.Errorf("the CA took the pending account key in %s, but %w", nextFile, err)
		}
		c.opts.Log.Warn("an unfinished account key rollover had been accepted by the CA: the new key is now in use", "directory", c.opts.Directory, "new_key", Thumbprint(nk.Public()))
		return nil
	case err == nil, errors.Is(err, errNoAccount):
		c.opts.Log.Info("an unfinished account key rollover was not accepted by the CA: the old key stays in use", "directory", c.opts.Directory)
		return os.Remove(nextFile)
	}
	return fmt.Errorf("settle the pending account key %s: %w", nextFile, err)
}

// newKeyLike makes a key of old's kind.
func newKeyLike(old crypto.Signer) (crypto.Signer, error) {
	switch k := old.(type) {
	case *ecdsa.PrivateKey:
		return ecdsa.GenerateKey(k.Curve, rand.Reader)
	case *rsa.PrivateKey:
		return rsa.GenerateKey(rand.Reader, k.N.BitLen())
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of pub, base64url (what
// key authorizations embed).
func Thumbprint(pub crypto.PublicKey) string {
	b, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// AccountThumbprint is the thumbprint of the account key in dir.
func AccountThumbprint(dir string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, accountKeyFile))
	if err != nil {
		return "", err
	}
	k, err := certcrypto.ParsePEMPrivateKey(raw)
	if err != nil {
		return "", err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return "", fmt.Errorf("account key of type %T", k)
	}
	return Thumbprint(s.Public()), nil
}

func jwsAlgorithm(k crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return jose.RS256, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		}
	}
	return "", fmt.Errorf("acme: no JWS algorithm for a %T account key", k)
}

// keyChange sends the key change request for acc from old to nk; sent is
// false when it failed before the request could reach the CA.
func (c *Client) keyChange(acc *account, old, nk crypto.Signer) (sent bool, err error) {
	dir, err := c.directory()
	if err != nil {
		return false, err
	}
	if dir.KeyChangeURL == "" {
		return false, fmt.Errorf("acme: %s offers no keyChange", c.opts.Directory)
	}
	innerAlg, err := jwsAlgorithm(nk)
	if err != nil {
		return false, err
	}
	inner, err := jose.NewSigner(jose.SigningKey{Algorithm: innerAlg, Key: nk}, &jose.SignerOptions{
		EmbedJWK:     true,
		ExtraHeaders: map[jose.HeaderKey]any{"url": dir.KeyChangeURL},
	})
	if err != nil {
		return false, fmt.Errorf("acme: key change signer: %w", err)
	}
	payload, err := json.Marshal(struct {
		Account string          `json:"account"`
		OldKey  jose.JSONWebKey `json:"oldKey"`
	}{acc.Registration.URI, jose.JSONWebKey{Key: old.Public()}})
	if err != nil {
		return false, err
	}
	signed, err := inner.Sign(payload)
	if err != nil {
		return false, fmt.Errorf("acme: sign key change: %w", err)
	}
	resp, body, err := c.signedPost(dir, old, acc.Registration.URI, dir.KeyChangeURL, []byte(signed.FullSerialize()), &sent)
	if err != nil {
		return sent, err
	}
	if resp.StatusCode == http.StatusOK {
		return true, nil
	}
	if resp.StatusCode == http.StatusConflict {
		return true, fmt.Errorf("acme: %s: the new key already belongs to account %s (409 Conflict)", dir.KeyChangeURL, resp.Header.Get("Location"))
	}
	return true, problemError(resp, body, dir.KeyChangeURL)
}

// errNoAccount is the CA's accountDoesNotExist answer to a lookup.
var errNoAccount = errors.New("no account has this key")

// lookupAccount asks the CA which account key k belongs to (newAccount
// with onlyReturnExisting, RFC 8555 §7.3.1): its URL, or errNoAccount.
func (c *Client) lookupAccount(k crypto.Signer) (string, error) {
	dir, err := c.directory()
	if err != nil {
		return "", err
	}
	resp, body, err := c.signedPost(dir, k, "", dir.NewAccountURL, []byte(`{"onlyReturnExisting":true}`), nil)
	if err != nil {
		return "", err
	}
	if resp.StatusCode == http.StatusOK {
		if loc := resp.Header.Get("Location"); loc != "" {
			return loc, nil
		}
		return "", fmt.Errorf("acme: %s answered an account lookup without its Location", dir.NewAccountURL)
	}
	perr := problemError(resp, body, dir.NewAccountURL)
	var pd *legoacme.ProblemDetails
	if errors.As(perr, &pd) && pd.Type == "urn:ietf:params:acme:error:accountDoesNotExist" {
		return "", fmt.Errorf("%w: %w", errNoAccount, perr)
	}
	return "", perr
}

// directory reads the CA's directory.
func (c *Client) directory() (legoacme.Directory, error) {
	var dir legoacme.Directory
	hc := &http.Client{Timeout: 30 * time.Second, Transport: c.transport}
	req, err := http.NewRequest(http.MethodGet, c.opts.Directory, nil)
	if err != nil {
		return dir, err
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := hc.Do(req)
	if err != nil {
		return dir, directoryError(c.opts.Directory, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return dir, fmt.Errorf("acme directory %s: %s", c.opts.Directory, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
		return dir, fmt.Errorf("acme directory %s: %w", c.opts.Directory, err)
	}
	return dir, nil
}

// maxBadNonce bounds the retries of one signed request that the CA
// refuses for its nonce (Pebble refuses 5% by default).
const maxBadNonce = 8

// signedPost POSTs payload signed by k, with kid when set (else the jwk),
// retrying badNonce answers with the nonce they carry. A badNonce
// rejection is safe to retry: the CA did not act on the request. sent, when
// not nil, is set once the request may have reached the CA.
func (c *Client) signedPost(dir legoacme.Directory, k crypto.Signer, kid, url string, payload []byte, sent *bool) (*http.Response, []byte, error) {
	alg, err := jwsAlgorithm(k)
	if err != nil {
		return nil, nil, err
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: c.transport}
	nonce := ""
	for attempt := 0; ; attempt++ {
		if nonce == "" {
			if nonce, err = c.newNonce(hc, dir.NewNonceURL); err != nil {
				return nil, nil, err
			}
		}
		key := jose.SigningKey{Algorithm: alg, Key: k}
		if kid != "" {
			key.Key = jose.JSONWebKey{Key: k, KeyID: kid}
		}
		signer, err := jose.NewSigner(key, &jose.SignerOptions{
			EmbedJWK:     kid == "",
			NonceSource:  staticNonce(nonce),
			ExtraHeaders: map[jose.HeaderKey]any{"url": url},
		})
		if err != nil {
			return nil, nil, fmt.Errorf("acme: signer: %w", err)
		}
		jws, err := signer.Sign(payload)
		if err != nil {
			return nil, nil, fmt.Errorf("acme: sign: %w", err)
		}
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(jws.FullSerialize()))
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Content-Type", "application/jose+json")
		req.Header.Set("User-Agent", c.opts.UserAgent)
		if sent != nil {
			*sent = true
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("acme: POST %s: %w", url, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("acme: POST %s: %w", url, err)
		}
		if resp.StatusCode == http.StatusBadRequest && bytes.Contains(body, []byte(legoacme.BadNonceErr)) && attempt < maxBadNonce {
			nonce = resp.Header.Get("Replay-Nonce")
			continue
		}
		return resp, body, nil
	}
}

type staticNonce string

func (n staticNonce) Nonce() (string, error) { return string(n), nil }

func (c *Client) newNonce(hc *http.Client, url string) (string, error) {
	req, err := http.NewRequest(http.MethodHead, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("acme: new nonce: %w", err)
	}
	resp.Body.Close()
	n := resp.Header.Get("Replay-Nonce")
	if n == "" {
		return "", fmt.Errorf("acme: new nonce: %s answered %s without a Replay-Nonce", url, resp.Status)
	}
	return n, nil
}

// problemError is the CA's error answer as lego's ProblemDetails (so that
// Unavailable and the callers' checks treat it as lego's own), or a plain
// error when the answer is not a problem document.
func problemError(resp *http.Response, body []byte, url string) error {
	pd := &legoacme.ProblemDetails{}
	if err := json.Unmarshal(body, pd); err != nil || pd.Type == "" {
		return fmt.Errorf("acme: POST %s: %s", url, resp.Status)
	}
	pd.HTTPStatus, pd.Method, pd.URL = resp.StatusCode, http.MethodPost, url
	return pd
}

// accountStamp tells whether the account files changed on disk since they
// were loaded (another process rolled the key over, or a fleet node
// imported the fleet's account): renameio replaces a file, so a new file
// is a new inode.
type accountStamp [3]os.FileInfo // key.pem, key.next.pem, account.json; nil: missing

func stampAccount(dir string) accountStamp {
	var s accountStamp
	for i, f := range []string{accountKeyFile, accountNextKeyFile, accountFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
			s[i] = fi
		}
	}
	return s
}

func (s accountStamp) same(o accountStamp) bool {
	for i := range s {
		a, b := s[i], o[i]
		if (a == nil) != (b == nil) {
			return false
		}
		if a != nil && (!os.SameFile(a, b) || a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime())) {
			return false
		}
	}
	return true
}
