package status

import "time"

// IsGone reports whether a fleet node whose latest report was written at
// reported is gone at now: it has not reported for longer than after (the
// fleet block's node_gone_after). A live daemon writes its reports at least
// every quarter of after (its fleet round), so only a stopped, cut-off or departed node is gone.
// A gone node does not hold the fleet back: status names it as gone
// instead of behind, and `renewer fleet forget NODE` removes its reports.
func IsGone(reported, now time.Time, after time.Duration) bool {
	return after > 0 && now.Sub(reported) > after
}
