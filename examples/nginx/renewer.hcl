# renewer for an nginx server: renewer answers HTTP-01 through nginx's
# webroot, installs the files where nginx.conf points, reloads nginx with the
# hook and then checks that nginx serves the new certificate.
#
#   sudo install -m 0755 examples/nginx/reload.sh /usr/local/lib/renewer/nginx-reload.sh
#   sudo install -d /var/www/acme
#   # add the server blocks of examples/nginx/site.conf to nginx
#   renewer validate && renewer renew

storage { path = "/var/lib/renewer" }

acme {
  directory    = "letsencrypt"
  email        = "ops@example.com"
  accept_terms = true
}

certificate "www" {
  domains = ["example.com", "www.example.com"]

  # nginx serves /.well-known/acme-challenge/ from here (see site.conf).
  challenge "http" { webroot = "/var/www/acme" }

  # cert.pem chain.pem fullchain.pem privkey.pem, written atomically.
  # nginx's master process reads them as root: the key stays 0600 root.
  install { dir = "/etc/ssl/renewer/www" }

  # nginx -t first: a broken nginx config is never reloaded, the hook
  # fails, and renewer reports "not applied" and retries on the next run.
  hook "nginx" {
    command = ["/usr/local/lib/renewer/nginx-reload.sh"]
    timeout = "30s"
  }

  # After the reload: connect as a client would and compare the served
  # certificate with the installed one (retrying for up to 30s).
  verify {
    endpoint    = "127.0.0.1:443"
    server_name = "www.example.com"
  }
}
