package hosttest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const mainConfig = `# /etc/renewer/renewer.hcl, edited as the docs say (CA: Pebble in the test).
storage { path = "/var/lib/renewer" }
acme {
  directory    = "https://127.0.0.1:14000/dir"
  ca_bundle    = "/etc/renewer-test/pebble-api.pem"
  email        = "ops@example.test"
  accept_terms = true
}
daemon { shutdown_grace = "60s" }

# As shipped: the reloads certificates name.
reload "nginx" {
  command = ["/usr/share/renewer/hooks/nginx-reload"]
  timeout = "30s"
}
reload "haproxy" {
  command = ["/usr/share/renewer/hooks/haproxy-reload"]
  timeout = "30s"
}
`

const wwwSite = `certificate "www" {
  domains = ["www.test"]
  challenge "http" { webroot = "/var/www/acme" }
  install {
    dir      = "/etc/ssl/renewer/www"
    group    = "www-data"
    key_mode = "0640"
  }
  reload  = ["nginx"]
  verify {
    endpoint    = "127.0.0.1:443"
    server_name = "www.test"
  }
}
`

const hapSite = `certificate "hap" {
  domains = ["hap.test"]
  challenge "http" { webroot = "/var/www/acme" }
  install { haproxy_bundle = "/etc/haproxy/certs/hap.pem" }
  reload = ["haproxy"]
  verify {
    endpoint    = "127.0.0.1:8443"
    server_name = "hap.test"
  }
}
`

// slowSite's hook takes 3 s: a daemon stopped while it runs must let it finish.
const slowSite = `certificate "slow" {
  domains = ["slow.test"]
  challenge "http" { webroot = "/var/www/acme" }
  install { dir = "/etc/ssl/renewer/slow" }
  hook "slow" {
    command = ["/bin/sh", "-c", "echo started > /var/lib/renewer/slow-hook; sleep 3; echo finished $(date +%s.%N) > /var/lib/renewer/slow-hook"]
    timeout = "30s"
  }
}
`

// packaged installs the package and checks what its user meets.
func packaged(t *testing.T, c *container, deb string) {
	raw, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	c.write("/root/"+filepath.Base(deb), string(raw), 0o644)
	// Test-only, in the throwaway container: dpkg's man-db trigger (a
	// rebuild of the whole manual index at each install and removal, most
	// of their time) is off, as in Debian's container images.
	c.must("rm", "-f", "/var/lib/man-db/auto-update")
	t.Cleanup(func() {
		if t.Failed() {
			for _, u := range []string{"renewer.service", "renewer-renew.service", "nginx.service", "haproxy.service", "pebble.service"} {
				t.Logf("journal of %s (tail):\n%s", u, tail(c.journal(u), 4000))
			}
			out, _ := c.exec("systemctl", "cat", "renewer.service")
			t.Logf("systemctl cat renewer.service:\n%s", out)
		}
	})

	// nginx: HTTP-01 from the webroot on port 80; TLS on 443 from the
	// install dir, seeded with the snakeoil certificate until renewer
	// replaces it. HAProxy: TLS on 8443 from a directory of bundles.
	c.must("install", "-d", "/var/www/acme") // nginx's webroot: part of the site (validate checks it)
	c.must("install", "-d", "/etc/ssl/renewer/www")
	c.must("cp", "/etc/ssl/certs/ssl-cert-snakeoil.pem", "/etc/ssl/renewer/www/fullchain.pem")
	c.must("cp", "/etc/ssl/private/ssl-cert-snakeoil.key", "/etc/ssl/renewer/www/privkey.pem")
	c.write("/etc/nginx/sites-enabled/default", `server {
    listen 80 default_server;
    location /.well-known/acme-challenge/ { root /var/www/acme; }
}
server {
    listen 443 ssl;
    server_name www.test;
    ssl_certificate     /etc/ssl/renewer/www/fullchain.pem;
    ssl_certificate_key /etc/ssl/renewer/www/privkey.pem;
}
`, 0o644)
	c.must("systemctl", "restart", "nginx")
	c.must("install", "-d", "/etc/haproxy/certs")
	c.must("sh", "-c", "cat /etc/ssl/certs/ssl-cert-snakeoil.pem /etc/ssl/private/ssl-cert-snakeoil.key > /etc/haproxy/certs/00-default.pem")
	cfg := c.read("/etc/haproxy/haproxy.cfg")
	if cfg == "" {
		t.Fatal("no /etc/haproxy/haproxy.cfg in the container")
	}
	c.write("/etc/haproxy/haproxy.cfg", cfg+`
frontend tls
    bind 127.0.0.1:8443 ssl crt /etc/haproxy/certs/
    mode http
    http-request return status 200 content-type text/plain string ok
`, 0o644)
	c.must("systemctl", "restart", "haproxy")

	t.Run("install", func(t *testing.T) {
		c.must("apt-get", "install", "-y", "-q", "/root/"+filepath.Base(deb))
		if st := c.show("renewer.service", "UnitFileState"); st != "enabled" {
			t.Errorf("renewer.service after install: %s, want enabled", st)
		}
		// Enabled, not started: it manages nothing until the config is edited.
		if st := c.show("renewer.service", "ActiveState"); st != "inactive" {
			t.Errorf("renewer.service after install: %s, want inactive until the config is edited\n%s", st, c.journal("renewer.service"))
		}
		for p, want := range map[string]string{
			"/etc/renewer":             "755 root root",
			"/etc/renewer/renewer.hcl": "640 root renewer",
			"/etc/renewer/conf.d":      "755 root root",
			"/var/lib/renewer":         "700 root root",
			"/usr/bin/renewer":         "755 root root",
		} {
			if got := strings.TrimSpace(c.must("stat", "-c", "%a %U %G", p)); got != want {
				t.Errorf("%s: %s, want %s", p, got, want)
			}
		}
		for _, u := range []string{"renewer.service", "renewer-renew.service"} {
			e := exposure(t, c, u)
			t.Logf("systemd-analyze security %s: %.1f", u, e)
			if e > maxExposure {
				out, _ := c.exec("systemd-analyze", "security", "--no-pager", u)
				t.Errorf("%s: exposure %.1f, want at most %.1f\n%s", u, e, maxExposure, out)
			}
		}
		// A normal user: a clear answer; in group renewer: the check.
		c.must("useradd", "-m", "ops")
		out, err := c.exec("runuser", "-u", "ops", "--", "renewer", "validate")
		if err == nil || !strings.Contains(out, "/etc/renewer/renewer.hcl") || !strings.Contains(out, "permission denied") {
			t.Errorf("renewer validate as a user outside group renewer: %v\n%s", err, out)
		}
		c.must("adduser", "-q", "ops", "renewer")
		if out, err := c.exec("runuser", "-u", "ops", "--", "renewer", "validate"); err != nil {
			t.Errorf("renewer validate in group renewer: %v", err)
		} else {
			t.Logf("renewer validate as ops (group renewer): %s", strings.TrimSpace(out))
		}
	})
	if t.Failed() {
		return
	}

	var wwwSerial string
	t.Run("nginx certificate from a conf.d file", func(t *testing.T) {
		// The docs' steps: edit the main file's acme block, drop a site
		// into conf.d, validate, enable --now.
		c.write("/etc/renewer/renewer.hcl", mainConfig, 0o640)
		c.write("/etc/renewer/conf.d/www.hcl", wwwSite, 0o644)
		c.must("renewer", "validate")
		c.must("systemctl", "enable", "--now", "renewer") // returns once renewer sent READY=1
		if st := c.show("renewer", "ActiveState"); st != "active" {
			t.Fatalf("after systemctl enable --now: %s", st)
		}
		if st := c.show("renewer", "StatusText"); st != "" && strings.Contains(st, "renewed") {
			t.Logf("status already has a pass: %s", st)
		}
		wwwSerial = waitServed(t, c, "127.0.0.1:443", "www.test", "/etc/ssl/renewer/www/cert.pem")
		if issuer := fileIssuer(c, "/etc/ssl/renewer/www/cert.pem"); !strings.Contains(issuer, "Pebble") {
			t.Errorf("issuer: %q, want Pebble's", issuer)
		}
		if got := strings.TrimSpace(c.must("stat", "-c", "%a %U %G", "/etc/ssl/renewer/www/privkey.pem")); got != "640 root www-data" {
			t.Errorf("installed key: %s, want 640 root www-data", got)
		}
		waitFor(t, 30*time.Second, "STATUS line", func() (bool, string) {
			st := c.show("renewer", "StatusText")
			return strings.Contains(st, "1 renewed, 0 failed, 0 not deployed"), st
		})
		status := c.must("systemctl", "status", "--no-pager", "renewer")
		if !strings.Contains(status, "Status: \"1 certificates: 1 renewed, 0 failed, 0 not deployed") {
			t.Errorf("systemctl status renewer has no STATUS line:\n%s", status)
		}
		j := c.journal("nginx")
		if !strings.Contains(j, "Reloaded nginx.service") {
			t.Errorf("nginx was not reloaded by the reload block:\n%s", tail(j, 1000))
		}
	})
	if t.Failed() {
		return
	}

	t.Run("reload adds a conf.d certificate", func(t *testing.T) {
		pid := c.show("renewer", "MainPID")
		c.write("/etc/renewer/conf.d/hap.hcl", hapSite, 0o644)
		c.must("systemctl", "reload", "renewer")
		serial := waitServed(t, c, "127.0.0.1:8443", "hap.test", "/etc/haproxy/certs/hap.pem")
		t.Logf("haproxy serves hap.test serial %s after a reload", serial)
		if got := c.show("renewer", "MainPID"); got != pid {
			t.Errorf("reload restarted the daemon: pid %s -> %s", pid, got)
		}
		// /etc/haproxy/certs was not in the daemon's namespace writable at
		// start (the config had no bundle then): the reload bound it.
		if j := c.journal("renewer"); !strings.Contains(j, `/etc/haproxy/certs (certificate "hap" install.haproxy_bundle) made writable for the daemon`) {
			t.Errorf("the reload did not make the bundle directory writable:\n%s", tail(j, 1500))
		}
		if j := c.journal("haproxy"); !strings.Contains(j, "Reloaded haproxy.service") {
			t.Errorf("haproxy was not reloaded by the reload block:\n%s", tail(j, 1000))
		}
		if got, _ := served(c, "127.0.0.1:443", "www.test"); got != wwwSerial {
			t.Errorf("www.test changed on a reload: %s -> %s", wwwSerial, got)
		}
	})

	t.Run("reload refuses a broken file", func(t *testing.T) {
		pid := c.show("renewer", "MainPID")
		c.write("/etc/renewer/conf.d/zz-broken.hcl", "certificate \"broken\" {\n  domains = [\n", 0o644)
		out, err := c.exec("systemctl", "reload", "renewer")
		if err == nil {
			t.Errorf("systemctl reload with a broken conf.d file succeeded:\n%s", out)
		}
		j := c.journal("renewer")
		if !strings.Contains(j, "zz-broken.hcl:") || !strings.Contains(j, "reload refused") {
			t.Errorf("the journal does not say why the reload was refused:\n%s", tail(j, 1500))
		}
		if got := c.show("renewer", "MainPID"); got != pid || c.show("renewer", "ActiveState") != "active" {
			t.Errorf("after a refused reload: pid %s -> %s, %s", pid, got, c.show("renewer", "ActiveState"))
		}
		c.must("rm", "/etc/renewer/conf.d/zz-broken.hcl")
	})

	t.Run("STATUS counts a failed deploy", func(t *testing.T) {
		c.write("/etc/renewer/conf.d/badhook.hcl", `certificate "badhook" {
  domains = ["badhook.test"]
  challenge "http" { webroot = "/var/www/acme" }
  hook "fails" { command = ["/bin/false"] }
}
`, 0o644)
		c.must("systemctl", "reload", "renewer")
		waitFor(t, 60*time.Second, "STATUS with a failed deploy", func() (bool, string) {
			st := c.show("renewer", "StatusText")
			return strings.Contains(st, "1 renewed, 0 failed, 1 not deployed"), st
		})
		c.must("rm", "/etc/renewer/conf.d/badhook.hcl")
		c.must("systemctl", "reload", "renewer")
	})

	t.Run("stop during a renewal finishes it", func(t *testing.T) {
		c.write("/etc/renewer/conf.d/slow.hcl", slowSite, 0o644)
		c.must("systemctl", "reload", "renewer")
		waitFor(t, 60*time.Second, "slow hook started", func() (bool, string) {
			b := c.read("/var/lib/renewer/slow-hook")
			return strings.TrimSpace(string(b)) == "started", string(b)
		})
		start := time.Now()
		c.must("systemctl", "stop", "renewer")
		took := time.Since(start)
		b := c.read("/var/lib/renewer/slow-hook")
		if j := c.journal("renewer"); !strings.Contains(j, "renewer: created /etc/ssl/renewer/slow") {
			t.Errorf("the reload did not create the new install dir:\n%s", tail(j, 1500))
		}
		// The hook must have finished after the stop was sent (not before
		// it, which would leave the stop nothing to wait for).
		f := strings.Fields(string(b))
		if len(f) != 2 || f[0] != "finished" {
			t.Errorf("stopped daemon: the hook under way did not finish (%q)", b)
		} else if at, err := strconv.ParseFloat(f[1], 64); err != nil || at < float64(start.UnixNano())/1e9 {
			t.Errorf("the hook finished at %s, before the stop was sent at %.3f: nothing was under way", f[1], float64(start.UnixNano())/1e9)
		}
		if took > 60*time.Second {
			t.Errorf("stop took %s, more than the 60s grace", took)
		}
		if j := c.journal("renewer"); strings.Contains(j, "abandoning work") {
			t.Errorf("work was abandoned:\n%s", tail(j, 1000))
		}
		if res := c.show("renewer", "Result"); res != "success" {
			t.Errorf("stop: result %s", res)
		}
		t.Logf("systemctl stop during a hook: %s", took.Round(100*time.Millisecond))
		c.must("systemctl", "start", "renewer")
	})

	t.Run("invalid config is not restarted", func(t *testing.T) {
		good := c.read("/etc/renewer/renewer.hcl")
		c.write("/etc/renewer/renewer.hcl", "acme {\n", 0o640)
		if _, err := c.exec("systemctl", "restart", "renewer"); err == nil {
			t.Errorf("restart with an invalid config succeeded")
		}
		// A restart to come shows as auto-restart (RestartSec=30s), at once.
		var sub string
		waitFor(t, 30*time.Second, "the failed start settles", func() (bool, string) {
			sub = c.show("renewer", "SubState")
			return sub == "failed" || sub == "auto-restart", sub
		})
		if sub != "failed" {
			t.Errorf("invalid config: %s, want failed (RestartPreventExitStatus=3)", sub)
		}
		if st := c.show("renewer", "ExecMainStatus"); st != "3" {
			t.Errorf("invalid config: exit %s, want 3", st)
		}
		c.write("/etc/renewer/renewer.hcl", string(good), 0o640)
		c.must("systemctl", "reset-failed", "renewer")
		c.must("systemctl", "start", "renewer")
	})

	t.Run("watchdog restarts a stalled daemon", func(t *testing.T) {
		// Test-only: a short watchdog and restart delay; the stall is a
		// SIGSTOP, so renewer stops answering altogether.
		c.write("/run/systemd/system/renewer.service.d/zz-test-watchdog.conf",
			"[Service]\nWatchdogSec=2s\nTimeoutAbortSec=1s\nRestartSec=1s\n", 0o644)
		c.must("systemctl", "daemon-reload")
		c.must("systemctl", "restart", "renewer")
		pid := c.show("renewer", "MainPID")
		time.Sleep(3 * time.Second) // the daemon answers the watchdog (it pings every second)
		if got := c.show("renewer", "MainPID"); got != pid {
			t.Fatalf("a healthy daemon was restarted: %s -> %s", pid, got)
		}
		c.must("kill", "-STOP", pid)
		waitFor(t, 40*time.Second, "restart after the watchdog", func() (bool, string) {
			got := c.show("renewer", "MainPID")
			return got != pid && got != "0" && c.show("renewer", "ActiveState") == "active", got
		})
		if j := c.journal("renewer"); !strings.Contains(j, "Watchdog timeout") {
			t.Errorf("journal does not show the watchdog timeout:\n%s", tail(j, 1000))
		}
		c.must("rm", "-r", "/run/systemd/system/renewer.service.d")
		c.must("systemctl", "daemon-reload")
		c.must("systemctl", "restart", "renewer")
	})

	t.Run("timer renews when due", func(t *testing.T) {
		c.must("systemctl", "disable", "--now", "renewer")
		before := fileSerial(c, "/etc/ssl/renewer/www/cert.pem")
		hap := fileSerial(c, "/etc/haproxy/certs/hap.pem")
		// Test-only: fire 1 s after the timer starts instead of twice a day.
		c.write("/run/systemd/system/renewer-renew.timer.d/zz-test.conf", "[Timer]\nOnActiveSec=1s\nAccuracySec=1s\nRandomizedDelaySec=0\n", 0o644)
		c.must("systemctl", "daemon-reload")
		run := func() {
			n := c.show("renewer-renew.service", "InvocationID")
			c.must("systemctl", "restart", "renewer-renew.timer")
			waitFor(t, 90*time.Second, "renewer-renew.service ran", func() (bool, string) {
				inv := c.show("renewer-renew.service", "InvocationID")
				return inv != n && inv != "" && c.show("renewer-renew.service", "ActiveState") == "inactive", c.show("renewer-renew.service", "ActiveState")
			})
			if r := c.show("renewer-renew.service", "Result"); r != "success" {
				t.Errorf("renewer-renew.service: %s\n%s", r, tail(c.journal("renewer-renew.service"), 1500))
			}
		}
		run() // nothing due: nothing renewed
		if got := fileSerial(c, "/etc/ssl/renewer/www/cert.pem"); got != before {
			t.Errorf("timer renewed www.test when nothing was due: %s -> %s", before, got)
		}
		// www.test due: its key type changed (due at once; a lifetime
		// running out would take days).
		c.write("/etc/renewer/conf.d/www.hcl", strings.Replace(wwwSite, `domains = ["www.test"]`, "domains = [\"www.test\"]\n  key_type = \"ec384\"", 1), 0o644)
		run()
		after := waitServed(t, c, "127.0.0.1:443", "www.test", "/etc/ssl/renewer/www/cert.pem")
		if after == before {
			t.Errorf("timer did not renew the due www.test (serial %s)", before)
		}
		if got := fileSerial(c, "/etc/haproxy/certs/hap.pem"); got != hap {
			t.Errorf("timer renewed hap.test, which was not due")
		}
		t.Logf("timer: www.test %s -> %s", before, after)
		c.must("rm", "-r", "/run/systemd/system/renewer-renew.timer.d")
		c.must("systemctl", "daemon-reload")
	})

	t.Run("remove and purge", func(t *testing.T) {
		c.must("systemctl", "enable", "--now", "renewer")
		c.must("apt-get", "remove", "-y", "-q", "renewer")
		if _, err := c.exec("test", "-e", "/usr/bin/renewer"); err == nil {
			t.Errorf("remove left /usr/bin/renewer")
		}
		if st := c.show("renewer.service", "ActiveState"); st == "active" {
			t.Errorf("remove left renewer.service running")
		}
		for _, p := range []string{"/etc/renewer/renewer.hcl", "/etc/renewer/conf.d/www.hcl", "/var/lib/renewer/live/www"} {
			if _, err := c.exec("test", "-e", p); err != nil {
				t.Errorf("remove deleted %s: %v", p, err)
			}
		}
		c.must("apt-get", "purge", "-y", "-q", "renewer")
		for _, p := range []string{"/etc/renewer", "/var/lib/renewer"} {
			if _, err := c.exec("test", "-e", p); err == nil {
				t.Errorf("purge left %s", p)
			}
		}
		if out, _ := c.exec("dpkg-statoverride", "--list", "/etc/renewer/renewer.hcl"); strings.TrimSpace(out) != "" {
			t.Errorf("purge left a stat override: %s", out)
		}
	})

}
