# renewer for an nginx server: renewer answers HTTP-01 through nginx's
# webroot, installs the files where nginx.conf points, reloads nginx (once
# per pass, however many certificates were renewed) and then checks that
# nginx serves the new certificate.
#
# With the Debian package (make deb), put the certificate block below into
# /etc/renewer/conf.d/www.hcl; the storage, acme and reload blocks are in
# the packaged /etc/renewer/renewer.hcl; the unit creates /var/www/acme and the install
# dir and makes them writable (see internal/docs/systemd.md). By hand:
#   sudo install -D -m 0755 examples/debian/hooks/nginx-reload /usr/share/renewer/hooks/nginx-reload
#   # add the server blocks of examples/nginx/site.conf to nginx
#   renewer validate && systemctl reload renewer

storage { path = "/var/lib/renewer" }

acme {
  directory    = "letsencrypt"
  email        = "ops@example.com"
  accept_terms = true
}

# `systemctl reload nginx`: nginx's own reload, in nginx's unit (nginx -t
# cannot run in renewer's sandbox). If nginx refuses the new config it
# keeps the old certificate; verify sees that, and renewer reports "not
# applied" and retries on the next run.
reload "nginx" {
  command = ["/usr/share/renewer/hooks/nginx-reload"]
  timeout = "30s"
}

certificate "www" {
  domains = ["example.com", "www.example.com"]

  # nginx serves /.well-known/acme-challenge/ from here (see site.conf).
  challenge "http" { webroot = "/var/www/acme" }

  # cert.pem chain.pem fullchain.pem privkey.pem, written atomically.
  # nginx's master process reads them as root: the key stays 0600 root.
  install { dir = "/etc/ssl/renewer/www" }

  # The reload above, once every certificate of the pass is installed.
  reload = ["nginx"]

  # After the reload: connect as a client would and compare the served
  # certificate with the installed one (retrying for up to 30s).
  verify {
    endpoint    = "127.0.0.1:443"
    server_name = "www.example.com"
  }
}
