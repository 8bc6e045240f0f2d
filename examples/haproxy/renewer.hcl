# renewer for HAProxy: renewer answers HTTP-01 itself on a local port that
# HAProxy forwards /.well-known/acme-challenge/ to, writes the bundle HAProxy
# loads (certificate, chain and key in one file), reloads HAProxy and checks
# the served certificate.
#
#   sudo install -m 0755 examples/haproxy/reload.sh /usr/local/lib/renewer/haproxy-reload.sh
#   # merge examples/haproxy/haproxy.cfg into /etc/haproxy/haproxy.cfg
#   renewer validate && renewer renew

storage { path = "/var/lib/renewer" }

acme {
  directory    = "letsencrypt"
  email        = "ops@example.com"
  accept_terms = true
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

  # haproxy -c first, then SIGUSR2 to the master-worker master (the same
  # reload that `systemctl reload haproxy` does on Debian).
  hook "haproxy" {
    command = ["/usr/local/lib/renewer/haproxy-reload.sh"]
    env     = { HAPROXY_CFG = "/etc/haproxy/haproxy.cfg", HAPROXY_PIDFILE = "/run/haproxy.pid" }
    timeout = "30s"
  }

  verify {
    endpoint    = "127.0.0.1:443"
    server_name = "www.example.com"
  }
}
