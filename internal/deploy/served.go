package deploy

import (
	"context"
	"sync"
	"time"

	"github.com/renewer/renewer/internal/certinfo"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/store"
	"github.com/renewer/renewer/internal/verify"
)

// probeTimeout bounds one look at an endpoint for a fleet report.
const probeTimeout = 3 * time.Second

// Served looks once at each verify endpoint of c (at the same time, no
// retries) and says which certificate it serves: what a fleet node reports
// of its own endpoints. An endpoint that cannot be reached has its error.
func Served(ctx context.Context, c config.Certificate) []store.EndpointReport {
	if len(c.Verify) == 0 {
		return nil
	}
	out := make([]store.EndpointReport, len(c.Verify))
	var wg sync.WaitGroup
	for i, v := range c.Verify {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			out[i].Endpoint = v.Endpoint
			leaf, err := verify.Served(pctx, v.Endpoint, v.ServerName)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Serial, out[i].NotAfter = certinfo.FormatSerial(leaf.SerialNumber), leaf.NotAfter.UTC()
		})
	}
	wg.Wait()
	return out
}
