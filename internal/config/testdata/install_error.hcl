# install without a target, install twice, bad owner, group and modes.
acme {}

certificate "www" {
  domains = ["example.com"]
  challenge "http" {}
  install {}
}

certificate "api" {
  domains = ["api.example.com"]
  challenge "http" {}
  install { dir = "/etc/ssl/a" }
  install { dir = "/etc/ssl/b" }
}

certificate "modes" {
  domains = ["modes.example.com"]
  challenge "http" {}
  install {
    haproxy_bundle = "/etc/haproxy/certs/modes.pem"
    owner          = "no-such-user-renewer"
    group          = "no-such-group-renewer"
    cert_mode      = "644"
    key_mode       = "0644"
  }
}

certificate "modes2" {
  domains = ["modes2.example.com"]
  challenge "http" {}
  install {
    dir       = "/etc/ssl/modes2"
    cert_mode = "0200"
    key_mode  = "07777"
  }
}
