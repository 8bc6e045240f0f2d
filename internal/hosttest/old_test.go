package hosttest

import (
	"os"
	"strings"
	"testing"
)

// oldUnits runs the unit and nginx hook renewer shipped before the package
// (testdata/old, copied from examples/ as they were) with the README's
// nginx setup, and checks that each failure of issue 15 happens with them.
func oldUnits(t *testing.T, c *container, bin string) {
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	c.write("/usr/local/bin/renewer", string(raw), 0o755)
	unit, err := os.ReadFile("testdata/old/renewer.service")
	if err != nil {
		t.Fatal(err)
	}
	u := strings.Replace(string(unit), "--config /etc/renewer/renewer.hcl", "--config /etc/renewer-old/renewer.hcl", 1)
	c.write("/etc/systemd/system/renewer-old.service", u, 0o644)
	renew, err := os.ReadFile("testdata/old/renewer-renew.service")
	if err != nil {
		t.Fatal(err)
	}
	c.write("/etc/systemd/system/renewer-old-renew.service", string(renew), 0o644)
	hook, err := os.ReadFile("testdata/old/nginx-reload.sh")
	if err != nil {
		t.Fatal(err)
	}
	c.write("/usr/local/lib/renewer/nginx-reload.sh", string(hook), 0o755)
	c.write("/etc/renewer-old/renewer.hcl", `storage { path = "/var/lib/renewer" }
acme {
  directory    = "https://127.0.0.1:14000/dir"
  ca_bundle    = "/etc/renewer-test/pebble-api.pem"
  email        = "ops@example.test"
  accept_terms = true
}
certificate "old" {
  domains = ["old.test"]
  challenge "http" { webroot = "/var/www/acme" }
  install { dir = "/etc/ssl/renewer/old" }
  hook "nginx" { command = ["/usr/local/lib/renewer/nginx-reload.sh"] }
}
`, 0o600)
	c.must("install", "-d", "/var/www/acme")
	c.write("/etc/nginx/sites-enabled/default", `server {
    listen 80 default_server;
    location /.well-known/acme-challenge/ { root /var/www/acme; }
}
`, 0o644)
	c.must("systemctl", "reload", "nginx")
	c.must("systemctl", "daemon-reload")

	if e := exposure(t, c, "renewer-old.service"); e <= maxExposure {
		t.Errorf("today's unit: exposure %.1f, expected above %.1f", e, maxExposure)
	} else {
		t.Logf("today's renewer.service: systemd-analyze security %.1f", e)
	}

	if e := exposure(t, c, "renewer-old-renew.service"); e <= maxExposure {
		t.Errorf("today's renewer-renew.service: exposure %.1f, expected above %.1f", e, maxExposure)
	} else {
		t.Logf("today's renewer-renew.service: systemd-analyze security %.1f", e)
	}

	// A missing install directory: the namespace cannot be set up.
	if _, err := c.exec("systemctl", "start", "renewer-old"); err == nil {
		t.Errorf("today's unit started without /etc/ssl/renewer")
	}
	if st := c.show("renewer-old", "ExecMainStatus"); st != "226" {
		t.Errorf("today's unit without /etc/ssl/renewer: exit status %s, expected 226 (NAMESPACE)", st)
	}
	c.exec("systemctl", "stop", "renewer-old")
	c.exec("systemctl", "reset-failed", "renewer-old")

	// With it: active (running), but HTTP-01 through the webroot fails.
	c.must("install", "-d", "/etc/ssl/renewer")
	c.must("systemctl", "start", "renewer-old")
	waitFor(t, 60e9, "today's unit: webroot write refused", func() (bool, string) {
		j := c.journal("renewer-old")
		return strings.Contains(j, "read-only file system"), tail(j, 500)
	})
	if st := c.show("renewer-old", "ActiveState"); st != "active" {
		t.Errorf("today's unit: %s, expected it to look active while every order fails", st)
	}

	// The nginx hook inside today's sandbox.
	out, err := c.exec("systemd-run", "--wait", "--pipe", "-q", "-p", "ProtectSystem=strict",
		"-p", "ReadWritePaths=/var/lib/renewer /etc/ssl/renewer", "/usr/local/lib/renewer/nginx-reload.sh")
	if err == nil || !strings.Contains(out, "Read-only file system") {
		t.Errorf("today's nginx hook under ProtectSystem=strict: err %v, output %s; expected a read-only failure", err, out)
	}

	// An invalid config: the reload "succeeds", the restart loops.
	c.write("/etc/renewer-old/renewer.hcl", "certificate {\n", 0o600)
	if _, err := c.exec("systemctl", "reload", "renewer-old"); err != nil {
		t.Errorf("today's unit: reload of an invalid config failed (%v); expected the defect: it succeeds", err)
	}
	c.exec("systemctl", "restart", "renewer-old")
	waitFor(t, 30e9, "today's unit: invalid config restarted", func() (bool, string) {
		sub := c.show("renewer-old", "SubState")
		return sub == "auto-restart", sub
	})

	// Leave nothing behind for the package.
	c.exec("systemctl", "stop", "renewer-old")
	c.exec("systemctl", "reset-failed", "renewer-old")
	c.must("rm", "-rf", "/etc/systemd/system/renewer-old.service", "/etc/systemd/system/renewer-old-renew.service", "/etc/renewer-old", "/usr/local/bin/renewer",
		"/usr/local/lib/renewer", "/var/lib/renewer", "/etc/ssl/renewer", "/var/www/acme")
	c.must("systemctl", "daemon-reload")
}
