# /etc/renewer/renewer.hcl: renewer's main configuration (Debian package).
#
# As shipped it manages no certificate: renewer.service runs and idles.
# To get certificates:
#   1. set acme.email below and accept_terms = true (you accept the CA's terms);
#   2. add one file per site to /etc/renewer/conf.d/ (certificate blocks only;
#      see /usr/share/doc/renewer/examples/), for example
#      /etc/renewer/conf.d/www.hcl:
#
#        certificate "www" {
#          domains = ["example.com", "www.example.com"]
#          challenge "http" { webroot = "/var/www/acme" }   # served by nginx
#          install { dir = "/etc/ssl/renewer/www" }
#          reload  = ["nginx"]                              # the reload block below
#          verify { endpoint = "127.0.0.1:443"  server_name = "www.example.com" }
#        }
#
#   3. renewer validate && systemctl reload renewer
#
# The unit makes exactly the directories this config writes (storage,
# webroots, install dirs, HAProxy bundle dirs) writable and creates missing
# ones: `renewer systemd paths` lists them. Nothing to edit in the units.
#
# Global blocks (storage, acme, daemon, reload, metrics, notify) live in this file
# only. Keep secrets out of it (env() or file()), or keep it 0640 root:renewer
# as installed; members of group renewer can run `renewer validate`.

storage { path = "/var/lib/renewer" }

acme {
  directory    = "letsencrypt"   # or "letsencrypt-staging", or a URL
  # email      = "ops@example.com"   # your address: the CA's expiry and policy mail
  accept_terms = false           # true: you accept the CA's terms of service
}

# Reloads that certificates name (reload = ["nginx"]): each runs once per
# pass, after every certificate that names it is installed, through
# `systemctl reload` (the hooks the package ships; nginx -t cannot run in
# renewer's sandbox). Unused ones do nothing.
reload "nginx" {
  command = ["/usr/share/renewer/hooks/nginx-reload"]
  timeout = "30s"
}

reload "haproxy" {
  command = ["/usr/share/renewer/hooks/haproxy-reload"]
  timeout = "30s"
}
