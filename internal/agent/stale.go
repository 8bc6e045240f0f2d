package agent

import (
	"fmt"
	"log/slog"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/store"
)

// cleanStale removes what a renewer killed while working on c left
// behind (issue 14 #6): temp version directories holding a private key,
// temp links and state files (store.CleanStale), temp files beside its
// install target's files (store.CleanTarget), and HTTP-01 answers in its
// webroot (acme.CleanWebroot). Called with c's lock held. A failure is
// logged and does not stop the renewal.
func (a *Agent) cleanStale(log *slog.Logger, c config.Certificate) {
	removed, err := a.store.CleanStale(c.Name)
	if err != nil {
		log.Warn("could not remove files left by an interrupted run", "err", err)
	}
	if in := c.Install; in != nil {
		r, err := store.CleanTarget(store.Target{Dir: in.Dir, HAProxyBundle: in.HAProxyBundle})
		if err != nil {
			log.Warn("could not remove temp files left in the install target", "err", err)
		}
		removed = append(removed, r...)
	}
	if c.Challenge.Type == config.ChallengeHTTP && c.Challenge.Webroot != "" {
		r, err := acme.CleanWebroot(c.Challenge.Webroot, a.now())
		if err != nil {
			log.Warn("could not remove challenge files left in the webroot", "err", err)
		}
		removed = append(removed, r...)
	}
	if len(removed) > 0 {
		log.Info("removed files left by an interrupted run", "files", removed)
	}
}

// checkWritable fails an attempt before anything is ordered when the
// storage cannot take the new certificate (a read-only or failing disk),
// instead of obtaining one and throwing it away (issue 14 #7). A dry run
// writes nothing and is not checked.
func (a *Agent) checkWritable(c config.Certificate, dryRun bool) error {
	if dryRun {
		return nil
	}
	if err := a.store.CheckWritable(c.Name); err != nil {
		return fmt.Errorf("storage is not writable; nothing ordered: %w", err)
	}
	return nil
}
