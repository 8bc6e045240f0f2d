package config

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/robfig/cron/v3"
)

// Defaults of the daemon block.
const (
	DefaultCheck         = "@every 1h"
	DefaultJitter        = 5 * time.Minute
	DefaultConcurrency   = 4
	DefaultRetryMin      = time.Minute
	DefaultRetryMax      = 6 * time.Hour
	DefaultShutdownGrace = 30 * time.Second
)

// Daemon shapes `renewer run` (and, for concurrency and retries, `renew`).
type Daemon struct {
	Check         string        // robfig/cron spec of the periodic full check
	Schedule      cron.Schedule // Check, parsed
	Jitter        time.Duration // random delay added to scheduled wake-ups, [0, Jitter)
	Concurrency   int           // obtains at once
	RetryMin      time.Duration // first backoff after a failure
	RetryMax      time.Duration // backoff cap
	ShutdownGrace time.Duration // how long in-flight work may finish after SIGTERM
}

// cronParser accepts standard five-field specs and descriptors (@every 1h, @daily).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func defaultDaemon() Daemon {
	s, _ := cronParser.Parse(DefaultCheck)
	return Daemon{
		Check: DefaultCheck, Schedule: s, Jitter: DefaultJitter, Concurrency: DefaultConcurrency,
		RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax, ShutdownGrace: DefaultShutdownGrace,
	}
}

func (d *decoder) daemon(b *hcl.Block) Daemon {
	dm := defaultDaemon()
	c := d.content(b.Body, []string{"check", "jitter", "concurrency", "retry_min", "retry_max", "shutdown_grace"})
	if a := c.Attributes["check"]; d.eval(a, &dm.Check) {
		s, err := cronParser.Parse(dm.Check)
		if err != nil {
			d.attrError(a, "Invalid check schedule", fmt.Sprintf(
				`%q: %s; use a cron spec such as "0 */6 * * *" or "@every 1h".`, dm.Check, err))
		} else {
			dm.Schedule = s
		}
	}
	d.duration(c.Attributes["jitter"], &dm.Jitter, true)
	d.duration(c.Attributes["retry_min"], &dm.RetryMin, false)
	d.duration(c.Attributes["retry_max"], &dm.RetryMax, false)
	d.duration(c.Attributes["shutdown_grace"], &dm.ShutdownGrace, false)
	if a := c.Attributes["concurrency"]; d.eval(a, &dm.Concurrency) && dm.Concurrency < 1 {
		d.attrError(a, "Invalid concurrency", "concurrency must be 1 or more.")
	}
	if dm.RetryMax < dm.RetryMin {
		if a := c.Attributes["retry_max"]; a != nil {
			d.attrError(a, "Invalid retry_max", fmt.Sprintf("retry_max (%s) is shorter than retry_min (%s).", dm.RetryMax, dm.RetryMin))
		} else {
			d.attrError(c.Attributes["retry_min"], "Invalid retry_min", fmt.Sprintf("retry_min (%s) is longer than retry_max (%s).", dm.RetryMin, dm.RetryMax))
		}
	}
	return dm
}

// duration decodes a duration attribute into *dst; zero is allowed only
// when zeroOK.
func (d *decoder) duration(a *hcl.Attribute, dst *time.Duration, zeroOK bool) {
	var s string
	if !d.eval(a, &s) {
		return
	}
	t, err := ParseDuration(s)
	switch {
	case err != nil:
		d.attrError(a, "Invalid "+a.Name, err.Error()+".")
	case t < 0 && zeroOK:
		d.attrError(a, "Invalid "+a.Name, fmt.Sprintf("%q must not be negative.", s))
	case t <= 0 && !zeroOK:
		d.attrError(a, "Invalid "+a.Name, fmt.Sprintf("%q is not a duration greater than zero.", s))
	default:
		*dst = t
	}
}
