package plan

import (
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
)

// Reasons that come with ACME Renewal Information.
const (
	ARIWindow       Reason = "the CA's renewal window (ARI) has come"
	ARINow          Reason = "the CA asks for renewal now (ARI window in the past)"
	EmergencyMargin Reason = "less than 1/20 of the lifetime left"
)

// ARI is the CA's suggested window for the installed certificate and the
// moment chosen in it.
type ARI struct {
	Start, End  time.Time
	Chosen      time.Time
	Explanation string
}

// ChooseMoment picks the moment to renew inside [start, end] (rnd in [0,1)),
// uniformly, as RFC 9773 recommends. It is chosen once per window and kept.
func ChooseMoment(start, end time.Time, rnd float64) time.Time {
	return start.Add(time.Duration(rnd * float64(end.Sub(start))))
}

// EmergencyAt is when renewal is due whatever the CA says: with 1/20 of the
// lifetime left.
func EmergencyAt(f *certinfo.Facts) time.Time {
	return f.NotAfter.Add(-f.Lifetime() / 20)
}

// DecideARI is Decide with the CA's renewal window: when ari is nil it is
// Decide. Otherwise the missing/names/key/expired reasons still come first,
// then the emergency margin (1/20 of the lifetime left, whatever the CA
// says), then the chosen moment replaces the lifetime rule: due from it on;
// a window already over means the CA wants the certificate replaced now (a
// revocation or a mass reissue).
func DecideARI(now time.Time, c config.Certificate, have *certinfo.Facts, ari *ARI) Decision {
	d := Decide(now, c, have)
	if ari == nil || have == nil || (d.Reason != InWindow && d.Reason != NotDue) {
		return d
	}
	emergency := EmergencyAt(have)
	if !now.Before(emergency) {
		return Decision{Due: true, Reason: EmergencyMargin, At: emergency}
	}
	at := ari.Chosen
	if at.After(emergency) {
		at = emergency
	}
	switch {
	case !now.Before(ari.End):
		return Decision{Due: true, Reason: ARINow, At: at}
	case !now.Before(at):
		return Decision{Due: true, Reason: ARIWindow, At: at}
	}
	return Decision{Due: false, Reason: NotDue, At: at}
}
