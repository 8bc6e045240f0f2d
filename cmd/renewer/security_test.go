package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/renewer/renewer/internal/testca"
)

// Distinctive secret values: none of them, nor their base64 or URL-escaped
// forms, may appear in anything renewer prints or writes.
const (
	leakEABKey       = "LEAKeabHMACkey7Qz9wX-and-32-bytes-at-least" // raw bytes of the EAB HMAC key
	leakTSIG         = "LEAKtsigSECRETvalue4Mn"                     // raw bytes of the RFC 2136 TSIG secret
	leakProviderPass = "LEAKproviderPASSWORD8Jk"                    // a DNS provider credential (httpreq)
	leakSMTPPass     = "LEAKsmtpPASSWORD2Lp"                        // SMTP password
	leakWebhookPath  = "LEAKwebhookPATHtoken5Rt"                    // token in a webhook URL's path
	leakWebhookQuery = "LEAKwebhookQUERYtoken6Yu"                   // token in a webhook URL's query
	leakHeader       = "LEAKbearerHEADERtoken3Gh"                   // webhook Authorization header
	leakSlack        = "LEAKslackHOOKtoken1Vb/B0/XXXX"              // Slack webhook path
	leakQueryKey     = "LEAKdreamhostAPIkey9Wq"                     // a DNS provider key sent in a URL query
)

// forms returns the ways a secret could show: as is, base64 (std and url,
// padded or not), URL-escaped.
func forms(secret string) []string {
	b := []byte(secret)
	out := []string{secret, base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
		url.QueryEscape(secret), url.PathEscape(secret)}
	// A prefix of a base64 form is enough to spot it (padding, line breaks).
	for _, s := range out[1:5] {
		out = append(out, s[:len(s)*3/4])
	}
	return out
}

type transcript struct {
	mu    sync.Mutex
	parts []string // "what: text"
}

func (tr *transcript) add(what, text string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.parts = append(tr.parts, what+"\n"+text)
}

// TestSecretsNeverLeak runs every command of the built binary at debug log
// level on a config holding every kind of secret, against a real Pebble
// (with EAB required) where some certificates succeed and others fail, and
// searches everything renewer printed or wrote (stdout, stderr, the daemon's
// log, the metrics endpoint, the storage's state and meta files, error
// messages) for the secrets.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	bin, err := buildRenewer()
	if err != nil {
		t.Fatal(err)
	}
	eabHMAC := base64.RawURLEncoding.EncodeToString([]byte(leakEABKey))
	ca := testca.StartT(t, testca.Options{EAB: map[string]string{"kid-leak": eabHMAC}})
	dir := t.TempDir()

	// A DNS provider endpoint and a Slack endpoint that refuse; a webhook
	// and an SMTP server where nothing listens.
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid_token", http.StatusForbidden)
	}))
	defer refuse.Close()
	dead := func() int {
		p, err := testca.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	metricsPort := dead()
	webhook := fmt.Sprintf("http://127.0.0.1:%d/hooks/%s?token=%s", dead(), leakWebhookPath, leakWebhookQuery)
	slack := refuse.URL + "/services/" + leakSlack
	cfgFile := filepath.Join(dir, "renewer.hcl")
	cfg := fmt.Sprintf(`storage { path = "state" }
acme {
  directory    = %q
  ca_bundle    = %q
  email        = "ops@example.test"
  accept_terms = true
  eab {
    kid  = "kid-leak"
    hmac = %q
  }
}
daemon {
  jitter         = "0s"
  shutdown_grace = "2s"
}
metrics { listen = "127.0.0.1:%d" }
certificate "web" {
  domains = ["leak-web.example.test"]
  challenge "http" { listen = "127.0.0.1:%d" }
}
certificate "tsig" {
  domains = ["leak-tsig.example.test"]
  challenge "dns" {
    provider = "rfc2136"
    env = {
      DNSUPDATE_NAMESERVER     = "127.0.0.1:%d"
      DNSUPDATE_TSIG_KEY       = "renewer-key."
      DNSUPDATE_TSIG_ALGORITHM = "hmac-sha256."
      DNSUPDATE_TSIG_SECRET    = %q
      DNSUPDATE_DNS_TIMEOUT    = "1"
    }
    propagation_timeout = "2s"
  }
}
certificate "api" {
  domains = ["leak-api.example.test"]
  challenge "dns" {
    provider = "httpreq"
    env = {
      HTTPREQ_ENDPOINT = %q
      HTTPREQ_USERNAME = "renewer"
      HTTPREQ_PASSWORD = %q
    }
    propagation_timeout = "2s"
  }
}
certificate "dh" {
  domains = ["leak-dh.example.test"]
  challenge "dns" {
    provider = "dreamhost"
    env = {
      DREAMHOST_API_KEY      = %q
      DREAMHOST_HTTP_TIMEOUT = "2"
    }
    propagation_timeout = "2s"
  }
}
notify "hook" {
  webhook = %q
  headers = { Authorization = "Bearer %s" }
  on      = ["all"]
}
notify "chat" {
  slack = %q
  on    = ["all"]
}
notify "mail" {
  email {
    smtp     = "127.0.0.1:%d"
    username = "renewer"
    password = %q
    from     = "renewer@example.test"
    to       = ["ops@example.test"]
  }
  on = ["all"]
}
`, ca.Directory, ca.CABundle, eabHMAC, metricsPort, ca.HTTPPort, dead(),
		base64.StdEncoding.EncodeToString([]byte(leakTSIG)), refuse.URL, leakProviderPass, leakQueryKey,
		webhook, leakHeader, slack, dead(), leakSMTPPass)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// The secrets as they are written in the config, and their raw bytes.
	secrets := []string{leakEABKey, eabHMAC, leakTSIG, base64.StdEncoding.EncodeToString([]byte(leakTSIG)),
		leakProviderPass, leakQueryKey, leakSMTPPass, leakWebhookPath, leakWebhookQuery, leakHeader, leakSlack, slack, webhook}

	tr := &transcript{}
	runCmd := func(wantCode int, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		full := append([]string{"--config", cfgFile, "--log-level", "debug"}, args...)
		cmd := exec.CommandContext(ctx, bin, full...)
		cmd.Dir = dir
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		tr.add(fmt.Sprintf("renewer %s: stdout", strings.Join(args, " ")), stdout.String())
		tr.add(fmt.Sprintf("renewer %s: stderr", strings.Join(args, " ")), stderr.String())
		if wantCode >= 0 && code != wantCode {
			t.Errorf("renewer %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, wantCode, stdout.String(), stderr.String())
		}
		return stdout.String() + stderr.String()
	}

	runCmd(0, "version")
	runCmd(0, "help")
	runCmd(0, "--help")
	runCmd(0, "renew", "--help")
	runCmd(0, "validate")
	runCmd(0, "plan")
	runCmd(-1, "status")
	runCmd(-1, "status", "--json")
	runCmd(1, "renew", "--dry-run")
	out := runCmd(1, "renew") // web is issued; tsig and api fail; notifications fail
	if !strings.Contains(out, "web") || !strings.Contains(out, "obtained") {
		t.Errorf("web was not obtained:\n%s", out)
	}
	runCmd(1, "--log-format", "json", "renew", "--force")
	runCmd(-1, "status")
	runCmd(-1, "status", "--json")
	runCmd(0, "plan")
	runCmd(0, "inspect", "web")
	runCmd(0, "revoke", "--reason", "superseded", "web")
	runCmd(-1, "import", "certbot", "--no-adopt", filepath.Join(dir, "no-certbot"))

	// The daemon, briefly: its log at debug level, the metrics endpoint,
	// a reload, then SIGTERM.
	daemon := exec.Command(bin, "--config", cfgFile, "--log-level", "debug", "run")
	daemon.Dir = dir
	log, exited := startDaemon(t, daemon)
	log.wait(t, "next wake-up", 2*time.Minute)
	if err := daemon.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("daemon: %v\n%s", err, log.String())
	}
	var metrics string
	for i := 0; i < 50 && metrics == ""; i++ {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(b)
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !strings.Contains(metrics, "renewer_") {
		t.Errorf("metrics endpoint: %q", metrics)
	}
	tr.add("metrics", metrics)
	daemon.Process.Signal(syscall.SIGHUP)
	log.wait(t, "config reloaded", 60*time.Second)
	daemon.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(90 * time.Second):
		t.Fatal("daemon did not stop")
	}
	tr.add("daemon log", log.String())

	// A broken config next to the secrets: the errors name lines, not values.
	broken := strings.Replace(cfg, `kid  = "kid-leak"`, "kid  = \"kid-leak\"\n    bogus = 1", 1)
	broken = strings.Replace(broken, `HTTPREQ_USERNAME = "renewer"`, `HTTPREQ_USERNAME = ["renewer"]`, 1)
	if err := os.WriteFile(cfgFile, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := runCmd(3, "validate"); !strings.Contains(out, "bogus") {
		t.Errorf("broken config not reported:\n%s", out)
	}
	runCmd(3, "status")

	// Everything renewer wrote to its storage.
	filepath.WalkDir(filepath.Join(dir, "state"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if b, err := os.ReadFile(p); err == nil {
			tr.add("file "+p, string(b))
		}
		return nil
	})

	for _, part := range tr.parts {
		for _, s := range secrets {
			for _, f := range forms(s) {
				if strings.Contains(part, f) {
					what, _, _ := strings.Cut(part, "\n")
					t.Errorf("%s shows a secret (%q, as %q):\n%s", what, s, f, part)
				}
			}
		}
	}
	all := strings.Join(tr.parts, "\n")
	// The failures the secrets' owners need to see are there, without them.
	for _, want := range []string{`"tsig"`, "httpreq", "127.0.0.1", "[redacted]"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q anywhere in the output", want)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("searched %d outputs (%d bytes) for %d secrets in %d forms each", len(tr.parts), len(all), len(secrets), len(forms("x")))
}
