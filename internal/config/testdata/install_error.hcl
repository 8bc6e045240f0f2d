# install without dir, and install twice.
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
