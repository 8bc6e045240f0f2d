package agent

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/renewer/renewer/internal/plan"
)

// fleetMoment is the moment in the CA's renewal window [start, end] at
// which a fleet renews the certificate with serial: a point derived from
// the serial and the window alone, so every node of the fleet computes the
// same one, whichever node fetched the window and whenever it did. Spread
// over the window like a random choice (RFC 9773), but the same on every
// node: `status` and `plan` show one next renewal fleet-wide, and the
// nodes reach it together (one of them takes the lock and renews). A
// moment already past means due now, on every node alike.
func fleetMoment(serial string, start, end time.Time) time.Time {
	if !start.Before(end) {
		return start
	}
	h := sha256.Sum256([]byte(serial + "\x00" + start.UTC().Format(time.RFC3339Nano) + "\x00" + end.UTC().Format(time.RFC3339Nano)))
	frac := float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53) // [0, 1)
	return plan.ChooseMoment(start, end, frac)
}
