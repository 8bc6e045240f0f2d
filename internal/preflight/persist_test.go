package preflight

import (
	"context"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/testca"
)

// dns-persist-01 needs no A record: the CA connects to nothing, so a name
// (or wildcard) without one is no finding; the block's resolvers are the
// ones asked.
func TestNetworkDNSPersistNeedsNoAddress(t *testing.T) {
	knot := testca.StartKnot(t, testca.KnotZone{Name: "example.test", Key: "k"})
	c := config.Certificate{Name: "p", Domains: []string{"*.internal.example.test", "internal.example.test"},
		Challenge: config.Challenge{Type: config.ChallengeDNSPersist, Persist: &config.DNSPersist{Resolvers: []string{knot.Addr}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, f := range Network(ctx, c, Options{}) {
		if f.Check == "resolve" {
			t.Errorf("finding for a dns-persist name: %s", f)
		}
	}
	rs, err := Options{}.resolvers(c)
	if err != nil || len(rs) != 1 || rs[0] != knot.Addr {
		t.Errorf("resolvers = %v, %v; want the block's %s", rs, err, knot.Addr)
	}
}
