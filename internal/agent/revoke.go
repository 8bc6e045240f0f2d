package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/store"
)

// ParseReason turns a revocation reason given by name (RFC 5280:
// unspecified, keyCompromise, affiliationChanged, superseded,
// cessationOfOperation; case-insensitive) or by number into its code.
func ParseReason(s string) (uint, error) {
	for name, code := range acme.RevocationReasons {
		if strings.EqualFold(s, name) {
			return code, nil
		}
	}
	if n, err := strconv.ParseUint(s, 10, 8); err == nil && slices.Contains(reasonCodes(), uint(n)) {
		return uint(n), nil
	}
	names := make([]string, 0, len(acme.RevocationReasons))
	for name := range acme.RevocationReasons {
		names = append(names, name)
	}
	slices.Sort(names)
	return 0, fmt.Errorf("unknown revocation reason %q; use one of %s", s, strings.Join(names, ", "))
}

func reasonCodes() []uint {
	var out []uint
	for _, c := range acme.RevocationReasons {
		out = append(out, c)
	}
	return out
}

// Revoked says what Revoke did.
type Revoked struct {
	Name   string
	Serial string
	CA     string // the directory asked
}

// Revoke revokes the live certificate of c at the CA that issued it, signed
// with the account that ordered it (both recorded in the version's
// meta.json), so it works after the config changed its CAs or e-mail. The
// state records the revocation; renewing is the caller's choice (a forced
// pass), as `renewer revoke` does unless --no-renew.
func (a *Agent) Revoke(ctx context.Context, c config.Certificate, reason uint) (Revoked, error) {
	out := Revoked{Name: c.Name}
	unlock, err := a.store.Lock(ctx, c.Name)
	if err != nil {
		return out, fmt.Errorf("lock: %w", err)
	}
	defer unlock()
	in := a.Inspect(c)
	if in.Live == nil || in.Facts == nil {
		if in.Problem != nil {
			return out, fmt.Errorf("no readable live certificate: %w", in.Problem)
		}
		return out, errors.New("no certificate installed")
	}
	out.Serial = in.Facts.Serial
	meta, err := store.ReadMeta(in.Live)
	if err != nil {
		return out, err
	}
	client, err := a.revocationClient(meta)
	if err != nil {
		return out, err
	}
	out.CA = client.Directory()
	certPEM, err := os.ReadFile(in.Live.Cert)
	if err != nil {
		return out, err
	}
	if err := client.Revoke(ctx, certPEM, reason); err != nil {
		return out, err
	}
	st := in.State
	st.Revoked(a.now(), out.Serial)
	if err := a.saveState(c.Name, st); err != nil {
		return out, err
	}
	a.log.Info("certificate revoked", "cert", c.Name, "serial", out.Serial, "ca", out.CA, "reason", reason)
	return out, nil
}

// revocationClient is a client of the CA and account recorded in meta, or
// of the primary CA and today's account for versions installed before
// renewer recorded them.
func (a *Agent) revocationClient(meta store.Meta) (*acme.Client, error) {
	if meta.CA == "" || meta.Account == "" {
		return a.client(context.Background(), a.cfg.ACME.CAs()[0])
	}
	ca := config.CA{Directory: meta.CA, CABundle: a.cfg.ACME.CABundle}
	for _, known := range a.cfg.ACME.CAs() {
		if known.Directory == meta.CA {
			ca = known
		}
	}
	accDir, err := a.store.AccountDir(meta.Account)
	if err != nil {
		return nil, err
	}
	if err := acme.HasAccount(accDir); err != nil {
		return nil, fmt.Errorf("the account that ordered this certificate (%s) is gone: %w", accDir, err)
	}
	o := acme.Options{
		Directory: ca.Directory, Email: a.cfg.ACME.Email, AcceptTerms: a.cfg.ACME.AcceptTerms,
		CABundle: ca.CABundle, AccountDir: accDir, UserAgent: "renewer/" + a.version, Log: a.log, Now: a.now,
		WriteFile: a.store.WriteFile,
	}
	if ca.EAB != nil {
		o.EAB = &acme.EAB{KID: ca.EAB.KID, HMAC: ca.EAB.HMAC}
	}
	return acme.New(o, a.solver)
}
