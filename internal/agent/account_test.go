package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/renewer/renewer/internal/acme"
	"github.com/renewer/renewer/internal/config"
	"github.com/renewer/renewer/internal/status"
	"github.com/renewer/renewer/internal/testca"
)

// Records that name the account key must be visible before the CA is
// asked: a rollover refuses (nothing sent, the key file unchanged) while
// one is missing, goes ahead with Force, and goes ahead once the record is
// there. No challenge of this version embeds the key (dns-persist-01's -02
// form would): the records come from the test's keyRecordsFn.
func TestRolloverWaitsForKeyRecords(t *testing.T) {
	t.Parallel()
	ca := testca.StartT(t, testca.Options{})
	a, cfg := setup(t, ca, fmt.Sprintf(`
certificate "www" {
  domains = ["keyrec.example.test"]
  ari     = false
  challenge "http" { listen = "127.0.0.1:%d" }
}`, ca.HTTPPort))
	if res := pass(t, a, PassOptions{}); res[0].Action != status.Obtained {
		t.Fatalf("first pass: %+v", res[0])
	}
	accDir, err := a.store.AccountDir(acme.AccountKey(ca.Directory, cfg.ACME.Email))
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(accDir, "key.pem")
	var asked []acme.RolloverKey
	a.keyRecordsFn = func(_ config.CA, k acme.RolloverKey) []KeyRecord {
		asked = append(asked, k)
		return []KeyRecord{{Cert: "www", Name: "_validation-persist.keyrec.example.test", Value: "key=" + k.Thumbprint}}
	}
	published := map[string][]string{}
	a.lookupTXTFn = func(_ context.Context, name string) ([]string, error) { return published[name], nil }

	before, _ := os.ReadFile(keyFile)
	r, err := a.RolloverAccount(context.Background(), RolloverOptions{})
	if err == nil || !strings.Contains(err.Error(), "publish these records") || !strings.Contains(err.Error(), "_validation-persist.keyrec.example.test") {
		t.Fatalf("rollover with the record missing: %v", err)
	}
	if len(r.Records) != 1 || len(asked) != 1 || asked[0].Account == "" {
		t.Fatalf("records %+v, asked %+v", r.Records, asked)
	}
	if now, _ := os.ReadFile(keyFile); !bytes.Equal(now, before) {
		t.Fatal("a refused rollover changed the key")
	}

	// Published (for the key this attempt makes): it goes ahead.
	a.keyRecordsFn = func(_ config.CA, k acme.RolloverKey) []KeyRecord {
		published["_validation-persist.keyrec.example.test"] = []string{"other", "key=" + k.Thumbprint}
		return []KeyRecord{{Cert: "www", Name: "_validation-persist.keyrec.example.test", Value: "key=" + k.Thumbprint}}
	}
	r, err = a.RolloverAccount(context.Background(), RolloverOptions{})
	if err != nil || r.New == "" {
		t.Fatalf("rollover with the record visible: %+v, %v", r, err)
	}
	if th, _ := acme.AccountThumbprint(accDir); th != r.New {
		t.Fatalf("key on disk %s, rolled over to %s", th, r.New)
	}

	// Missing again, with Force: it goes ahead too.
	delete(published, "_validation-persist.keyrec.example.test")
	a.keyRecordsFn = func(_ config.CA, k acme.RolloverKey) []KeyRecord {
		return []KeyRecord{{Cert: "www", Name: "_validation-persist.keyrec.example.test", Value: "key=" + k.Thumbprint}}
	}
	if r, err = a.RolloverAccount(context.Background(), RolloverOptions{Force: true}); err != nil {
		t.Fatalf("forced rollover: %v", err)
	}
	if res := pass(t, a, PassOptions{Force: true}); !res[0].OK() || res[0].Action != status.Renewed {
		t.Fatalf("renewal after two rollovers: %+v", res[0])
	}
}

// --ca picks a configured CA by URL, shorthand or host; anything else is a
// usage error naming what the config has.
func TestRolloverPickCA(t *testing.T) {
	cfg := &config.Config{ACME: config.ACME{Directory: config.LetsEncrypt,
		Fallback: []config.CA{{Directory: "https://ca.example.net:8443/acme/directory"}}}}
	a := &Agent{cfg: cfg}
	u, _ := url.Parse(config.LetsEncrypt)
	for name, want := range map[string]string{
		"":                         config.LetsEncrypt,
		"letsencrypt":              config.LetsEncrypt,
		u.Host:                     config.LetsEncrypt,
		"ca.example.net:8443/acme": "https://ca.example.net:8443/acme/directory",
		"ca.example.net:8443":      "https://ca.example.net:8443/acme/directory",
		"https://ca.example.net:8443/acme/directory": "https://ca.example.net:8443/acme/directory",
	} {
		got, err := a.pickCA(name)
		if err != nil || got.Directory != want {
			t.Errorf("pickCA(%q) = %q, %v; want %q", name, got.Directory, err, want)
		}
	}
	_, err := a.pickCA("zerossl")
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "ca.example.net") {
		t.Errorf("pickCA of an unconfigured CA: %v", err)
	}
}
