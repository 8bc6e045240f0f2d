package acme

import (
	"errors"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/acme/api"
)

// RetryAfter reports how long the CA asked us to wait, when err is a
// rate-limit answer that says so.
func RetryAfter(err error) (time.Duration, bool) {
	var rl *legoacme.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter == "" {
		return 0, false
	}
	d, err := api.ParseRetryAfter(rl.RetryAfter)
	if err != nil || d <= 0 {
		return 0, false
	}
	return d, true
}
