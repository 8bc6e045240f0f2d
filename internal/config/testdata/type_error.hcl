# Values of the wrong type.
storage {
  keep_versions = "many"
}

acme {
  accept_terms = "yes"
  email        = null
}

certificate "www" {
  domains = "example.com"
  challenge "http" {
    listen = 80
  }
  hook "reload" {
    command = "nginx -s reload"
    env     = ["FOO=bar"]
  }
}

certificate "half" {
  domains      = ["half.example.com"]
  renew_before = { days = 30 }
  challenge "http" {
    listen = [":80"]
  }
}
