package fleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/agent"
	"github.com/renewer/renewer/internal/config"
)

// The daemon's HTTP-01 answers come from a token cache that its watch
// fills as soon as the daemon starts serving (agent.ServeChallenges calls
// ServeTokens), before any lookup: a token another node presents appears
// in the cache, and leaves it when deleted, without this node asking.
func TestTokenCacheFedByWatch(t *testing.T) {
	t.Parallel()
	eps := startCluster(t, 1)
	k := newKey(t)
	here, other := open(t, eps, "here", k), open(t, eps, "other", k)
	ctx := context.Background()

	cfg, err := config.Parse("/etc/renewer/renewer.hcl", []byte("acme {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, agent.Options{Log: logger(t, "here"), Fleet: here})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.ServeChallenges(); err != nil {
		t.Fatal(err)
	}

	if err := other.PutToken(ctx, "tok-A", "tok-A.thumb"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the token in this node's cache without a lookup", func() bool {
		v, ok := here.CachedToken("tok-A")
		return ok && v == "tok-A.thumb"
	})
	if err := other.DeleteToken(ctx, "tok-A"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the deleted token gone from the cache", func() bool {
		_, ok := here.CachedToken("tok-A")
		return !ok
	})
	if v, ok := here.Token("tok-A"); ok {
		t.Errorf("a deleted token is still answered: %q", v)
	}
}
