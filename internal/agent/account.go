package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/store"
)

// Account key rollover (`renewer account rollover`): the account of one
// configured CA gets a new key at the CA (internal/acme does the RFC 8555
// exchange and keeps the old key until the CA took the new one), under a
// lock: the store's on one machine, the fleet's account lock in fleet mode,
// where the new account is then published and every node takes it before
// its next order (syncFleetAccount).

// RolloverOptions choose the account to roll over.
type RolloverOptions struct {
	// CA names the CA: its directory URL, a shorthand the acme block
	// accepts (letsencrypt, ...), or its host (as status prints it); the
	// staging twin's URL or shorthand (the account of renew --dry-run);
	// empty: the primary CA.
	CA string
	// Force rolls over although records that depend on the key (see
	// KeyRecord) are not visible yet.
	Force bool
}

// KeyRecord is a DNS record that names the account key and must be
// published before the key changes: dns-persist-01's -02 form embeds a
// hash of the key (the -01 form names the account URL, which a rollover
// keeps, and needs nothing).
type KeyRecord struct {
	Cert  string // the certificate that validates with it
	Name  string // the owner name, e.g. _validation-persist.example.com
	Value string // the TXT value for the new key
}

// AccountRollover says what RolloverAccount did.
type AccountRollover struct {
	CA       string // the directory
	Account  string // the account URL, unchanged
	Old, New string // the keys' thumbprints
	Settled  bool   // the CA's answer was lost; asking it showed the new key taken
	Fleet    bool   // the fleet's account was replaced for every node
	Records  []KeyRecord
}

// RolloverAccount gives the account of the chosen CA a new key. On any
// error the old key stays in use (or, when the CA's answer was lost and it
// could not be asked, the new key waits pending and is settled at the next
// contact with the CA: acme.ErrRolloverUnknown).
func (a *Agent) RolloverAccount(ctx context.Context, o RolloverOptions) (AccountRollover, error) {
	ca, err := a.pickCA(o.CA)
	if err != nil {
		return AccountRollover{}, err
	}
	out := AccountRollover{CA: ca.Directory}
	accKey := acme.AccountKey(ca.Directory, a.cfg.ACME.Email)
	accDir, err := a.store.AccountDir(accKey)
	if err != nil {
		return out, err
	}
	if err := acme.HasAccount(accDir); err != nil && a.fleet == nil {
		return out, fmt.Errorf("no account for %s in %s yet: nothing to roll over (renewer registers one at the first order)", ca.Directory, accDir)
	}
	// One rollover at a time on this machine.
	unlock, err := a.store.Lock(ctx, "_account-"+accKey)
	if err != nil {
		return out, fmt.Errorf("lock account: %w", err)
	}
	defer unlock()
	client, err := a.client(ctx, ca) // in fleet mode: the fleet's account, imported
	if err != nil {
		return out, err
	}
	ro := acme.RolloverOptions{Before: func(ctx context.Context, k acme.RolloverKey) error {
		out.Records = a.keyRecords(ca, k)
		return a.checkKeyRecords(ctx, out.Records, o.Force)
	}}
	var res *acme.RolloverResult
	if a.fleet == nil {
		res, err = client.Rollover(ctx, ro)
	} else {
		res, err = a.rolloverFleet(ctx, client, accKey, accDir, ro)
		out.Fleet = err == nil
	}
	if err != nil {
		return out, err
	}
	out.Account, out.Old, out.New, out.Settled = res.Account, res.Old, res.New, res.Settled
	a.log.Info("account key rolled over", "ca", ca.Directory, "account", res.Account, "old_key", res.Old, "new_key", res.New, "fleet", out.Fleet)
	return out, nil
}

// rolloverFleet rolls the fleet's account over under its fleet lock: the
// shared account is taken first (another node may have rolled it over),
// the pending key is published before the CA is asked (so any node can
// settle a rollover whose author died), and the result after.
func (a *Agent) rolloverFleet(ctx context.Context, client *acme.Client, accKey, accDir string, ro acme.RolloverOptions) (*acme.RolloverResult, error) {
	u, ok := a.fleet.(store.AccountUpdater)
	if !ok {
		return nil, errors.New("this fleet storage cannot replace the shared account")
	}
	var res *acme.RolloverResult
	err := u.UpdateAccount(ctx, filepath.Base(accDir), func(ctx context.Context, current []byte, publish func(context.Context, []byte) error) error {
		if current == nil {
			return fmt.Errorf("the fleet shares no account %s yet: nothing to roll over", accKey)
		}
		if err := a.importAccount(accDir, current); err != nil {
			return err
		}
		staged := false
		ro.Stage = func(ctx context.Context, exported []byte) error {
			staged = true
			return publish(ctx, exported)
		}
		var rerr error
		res, rerr = client.Rollover(ctx, ro)
		if !staged {
			return rerr
		}
		// The account as it now is on disk: the new key, the old one
		// (refused), or the pending one (outcome unknown).
		exp, err := acme.ExportAccount(accDir)
		if err == nil {
			err = publish(ctx, exp)
		}
		if err != nil && rerr == nil {
			return fmt.Errorf("the CA took the new key, but publishing it to the fleet failed: %w; the other nodes settle the pending key it was published with at their next order", err)
		}
		return errors.Join(rerr, err)
	})
	return res, err
}

// importAccount writes the fleet's account into accDir unless it holds it
// already (an unchanged file keeps the clients from reloading it).
func (a *Agent) importAccount(accDir string, data []byte) error {
	if cur, err := acme.ExportAccount(accDir); err == nil && bytes.Equal(cur, data) {
		return nil
	}
	return acme.ImportAccount(accDir, data, a.store.WriteFile)
}

// syncFleetAccount takes the fleet's account of ca before an order, so a
// node orders with the key another node rolled over to (the client
// notices the changed files and loads them).
func (a *Agent) syncFleetAccount(ctx context.Context, ca config.CA, c *acme.Client) error {
	accDir, err := a.store.AccountDir(acme.AccountKey(ca.Directory, a.cfg.ACME.Email))
	if err != nil {
		return err
	}
	var shared []byte
	get := func() ([]byte, error) { return acme.ExportAccount(accDir) }
	put := func(b []byte) error { shared = b; return a.importAccount(accDir, b) }
	if err := a.fleet.SyncAccount(ctx, filepath.Base(accDir), get, put, c.Register); err != nil {
		return fmt.Errorf("fleet account: %w", err)
	}
	if shared != nil && acme.AccountPending(shared) {
		a.settleFleetAccount(ctx, c, accDir, shared)
	}
	return nil
}

// settleFleetAccount settles a rollover another node left unsettled (its
// pending key is in the fleet's account): the client asks the CA which
// key it knows, and the result replaces the fleet's account unless it
// changed meanwhile. On failure nothing is lost: the pending key stays
// shared, and the next order asks again.
func (a *Agent) settleFleetAccount(ctx context.Context, c *acme.Client, accDir string, shared []byte) {
	u, ok := a.fleet.(store.AccountUpdater)
	if !ok {
		return
	}
	if err := c.Register(ctx); err != nil { // loads the account: settles the pending key
		return
	}
	settled, err := acme.ExportAccount(accDir)
	if err != nil || acme.AccountPending(settled) || bytes.Equal(settled, shared) {
		return
	}
	err = u.UpdateAccount(ctx, filepath.Base(accDir), func(ctx context.Context, current []byte, publish func(context.Context, []byte) error) error {
		if !bytes.Equal(current, shared) {
			return nil // another node settled it, or rolled over again
		}
		return publish(ctx, settled)
	})
	if err != nil {
		a.log.Warn("could not share the settled account key with the fleet; the other nodes settle it themselves", "err", err)
		return
	}
	a.log.Info("settled an unfinished account key rollover and shared the result with the fleet", "account", filepath.Base(accDir))
}

// pickCA finds the configured CA name designates.
func (a *Agent) pickCA(name string) (config.CA, error) {
	cas := a.cfg.ACME.CAs()
	if name == "" {
		return cas[0], nil
	}
	want := name
	if u, ok := config.KnownDirectory(name); ok {
		want = u
	}
	var names []string
	for _, ca := range cas {
		u, err := url.Parse(ca.Directory)
		if ca.Directory == want || err == nil && (u.Host == name || u.Host+strings.TrimSuffix(u.Path, "/directory") == name) {
			return ca, nil
		}
		if ca.StagingDirectory != ca.Directory && ca.StagingDirectory == want { // the account renew --dry-run uses
			ca.Directory = ca.StagingDirectory
			return ca, nil
		}
		names = append(names, ca.Directory)
	}
	return config.CA{}, &UsageError{fmt.Errorf("no configured CA %q: the config names %s", name, strings.Join(names, ", "))}
}

// UsageError is a request that names nothing the config has: nothing was
// attempted.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// keyRecords lists the DNS records that embed the account key and so
// must be published for the new key k before the CA switches to it.
//
// Hook point for dns-persist-01: its -01 form (the one Pebble v2.10.1 and
// Let's Encrypt's staging validate) names the account URL, which a
// rollover keeps, so no record changes. When the -02 form (a hash of the
// account URL and key) is supported, return here, for each certificate
// whose challenge uses it with this CA, the record for k; RolloverAccount
// then prints them and refuses until they are visible (unless Force).
func (a *Agent) keyRecords(ca config.CA, k acme.RolloverKey) []KeyRecord {
	if a.keyRecordsFn != nil {
		return a.keyRecordsFn(ca, k)
	}
	return nil
}

// recordLookupTimeout bounds each record's lookup.
const recordLookupTimeout = 10 * time.Second

// checkKeyRecords refuses (unless force) while a record is not visible
// through this machine's resolver.
func (a *Agent) checkKeyRecords(ctx context.Context, recs []KeyRecord, force bool) error {
	var missing []string
	for _, r := range recs {
		lctx, cancel := context.WithTimeout(ctx, recordLookupTimeout)
		vals, err := a.lookupTXT(lctx, r.Name)
		cancel()
		if err != nil || !slices.Contains(vals, r.Value) {
			missing = append(missing, fmt.Sprintf("%s (certificate %s): %s IN TXT %q", r.Name, r.Cert, r.Name, r.Value))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if force {
		a.log.Warn("records that name the new account key are not visible; rolling over anyway (--force)", "records", missing)
		return nil
	}
	return fmt.Errorf("publish these records for the new key first (or use --force): %s", strings.Join(missing, "; "))
}

func (a *Agent) lookupTXT(ctx context.Context, name string) ([]string, error) {
	if a.lookupTXTFn != nil {
		return a.lookupTXTFn(ctx, name)
	}
	return net.DefaultResolver.LookupTXT(ctx, name)
}
