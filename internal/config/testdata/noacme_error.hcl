# No acme block at all.
storage {
  path = "/var/lib/renewer"
}

certificate "www" {
  domains = ["example.com"]
  challenge "http" {}
}
