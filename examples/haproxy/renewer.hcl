# renewer for HAProxy: renewer answers HTTP-01 itself on a local port that
# HAProxy forwards /.well-known/acme-challenge/ to, writes the bundle HAProxy
# loads (certificate, chain and key in one file), reloads HAProxy and checks
# the served certificate.
#
# With the Debian package (make deb), the reload below is in the packaged
# /etc/renewer/renewer.hcl, its hook is installed, and the
# unit makes /etc/haproxy/certs writable for renewer (internal/docs/systemd.md).
#   # merge examples/haproxy/haproxy.cfg into /etc/haproxy/haproxy.cfg
#   renewer validate && systemctl reload renewer

storage { path = "/var/lib/renewer" }

acme {
  directory    = "letsencrypt"
  email        = "ops@example.com"
  accept_terms = true
}

# `systemctl reload haproxy`: Debian's unit checks the configuration
# (haproxy -c) before it signals the master, so a refused bundle fails the
# reload. (reload.sh beside this file does the same for an HAProxy run
# without systemd.) Once per pass, however many bundles were written.
reload "haproxy" {
  command = ["/usr/share/renewer/hooks/haproxy-reload"]
  timeout = "30s"
}

certificate "www" {
  domains = ["example.com", "www.example.com"]

  # HAProxy owns port 80 and sends challenge requests here (see haproxy.cfg).
  challenge "http" { listen = "127.0.0.1:8402" }

  # One PEM file with certificate, chain and key, as HAProxy's crt wants.
  # HAProxy's master reads it as root before dropping privileges.
  install {
    haproxy_bundle = "/etc/haproxy/certs/www.pem"
    key_mode       = "0600"
  }

  reload = ["haproxy"]

  verify {
    endpoint    = "127.0.0.1:443"
    server_name = "www.example.com"
  }
}
