# One site's file: its certificate and watch blocks are fine here, the
# global blocks are not.
storage { path = "/srv/renewer" }

acme {
  email = "site@example.com"
}

defaults { key_type = "rsa2048" }

certificate "www" {
  domains = ["www.example.com"]
  challenge "http" {}
}

watch "cdn" { endpoint = "cdn.example.net:443" }

notify "site" { webhook = "https://hooks.example.com/site" }
metrics {}
daemon {}
fleet {}
