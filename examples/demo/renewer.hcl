# The demo's configuration: two certificates from a local Pebble CA.
# `make demo` starts the CA and sets the DEMO_* variables; env() reads them.

storage {
  path          = env("DEMO_STORAGE")
  keep_versions = 3
}

acme {
  directory    = env("DEMO_ACME_DIRECTORY") # a local Pebble, not Let's Encrypt
  email        = "demo@example.test"
  accept_terms = true
  ca_bundle    = env("DEMO_CA_BUNDLE")      # Pebble's API uses a private TLS root
}

defaults {
  key_type     = "ec256"
  renew_before = "1/3"
}

certificate "www" {
  domains = ["example.test", "www.example.test"]
  challenge "http" { listen = env("DEMO_HTTP_LISTEN") }
  hook "show" {
    command = ["/bin/sh", "-c", "echo \"installed $RENEWER_NAME ($RENEWER_DOMAINS): serial $RENEWER_SERIAL, expires $RENEWER_NOT_AFTER, fullchain $RENEWER_FULLCHAIN\""]
    timeout = "10s"
  }
}

certificate "api" {
  domains  = ["api.example.test"]
  key_type = "rsa2048"
  challenge "http" { listen = env("DEMO_HTTP_LISTEN") }
  hook "show" {
    command = ["/bin/sh", "-c", "echo \"installed $RENEWER_NAME ($RENEWER_DOMAINS): serial $RENEWER_SERIAL, expires $RENEWER_NOT_AFTER, key $RENEWER_KEY\""]
  }
}
