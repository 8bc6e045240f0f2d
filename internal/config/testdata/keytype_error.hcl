# Unknown key types, in defaults and in a certificate.
acme {}

defaults {
  key_type = "rsa1024"
}

certificate "www" {
  domains  = ["example.com"]
  key_type = "EC256"
  challenge "http" {}
}
