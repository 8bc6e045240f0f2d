package report

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/renewer/renewer/internal/notify"
)

// AccountRollover is what `renewer account rollover` did, as plain values.
type AccountRollover struct {
	CA       string // the directory URL
	Account  string // the account URL ("" when the attempt failed early)
	Old, New string // the keys' thumbprints
	Fleet    bool   // the fleet's shared account was replaced
	Settled  bool   // the CA's answer was lost; asking it showed the new key taken
	Err      error  // why it failed (the old key stays in use)
}

// AccountRolled notifies an account key rollover (event account_rollover:
// info when done, warning when it failed).
func (r *Reporter) AccountRolled(ev AccountRollover) {
	if r.notify == nil {
		return
	}
	e := notify.Event{Kind: notify.AccountRollover, Severity: notify.Info, Subject: notify.Account, Name: caHost(ev.CA)}
	if ev.Err != nil {
		e.Severity, e.Error = notify.Warning, ev.Err.Error()
		e.Message = fmt.Sprintf("The key rollover of the ACME account at %s failed; the old key stays in use unless the error says otherwise.", ev.CA)
	} else {
		where := "this node"
		if ev.Fleet {
			where = "every node of the fleet (each takes it before its next order)"
		}
		e.Message = fmt.Sprintf("The ACME account %s at %s has a new key (thumbprint %s, was %s), used by %s.", ev.Account, ev.CA, ev.New, ev.Old, where)
	}
	r.notify.Send(e)
}

// caHost is a directory URL's host and path without "/directory".
func caHost(dir string) string {
	u, err := url.Parse(dir)
	if err != nil || u.Host == "" {
		return dir
	}
	return u.Host + strings.TrimSuffix(u.Path, "/directory")
}
