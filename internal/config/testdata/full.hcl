# A complete, valid configuration.
storage {
  path          = "state"
  keep_versions = 0
}

acme {
  directory    = "letsencrypt"
  email        = "ops@example.com"
  accept_terms = true
  ca_bundle    = "roots.pem"
}

defaults {
  key_type     = "ec384"
  renew_before = "1/3"
}

certificate "www" {
  domains      = ["Example.COM.", "www.example.com", "192.0.2.1", "2001:db8::1"]
  key_type     = "rsa2048"
  renew_before = "30d"
  challenge "http" {
    webroot = "webroot"
  }
  install {
    dir            = "/etc/ssl/renewer/www"
    haproxy_bundle = "/etc/haproxy/certs/www.pem"
    owner          = "root"
    group          = "0"
    cert_mode      = "0640"
    key_mode       = "0640"
  }
  hook "reload" {
    command = ["/bin/sh", "-c", "nginx -s reload"]
    timeout = "30s"
    env     = { TOKEN = file("secret.txt"), HOME_DIR = env("RENEWER_TEST_HOME") }
  }
  hook "notify" {
    command = ["/usr/local/bin/notify"]
  }
  verify {
    endpoint = "127.0.0.1:443"
  }
  verify {
    endpoint    = "[::1]:8443"
    server_name = "www.example.com"
    timeout     = "1m"
  }
}

certificate "api.v2" {
  domains = ["api.example.com"]
  challenge "http" {
    listen = "127.0.0.1:8080"
  }
}

certificate "mail" {
  domains      = ["mail.example.com"]
  renew_before = "0.25"
  ari          = false
  challenge "http" {}
}

daemon {
  check          = "0 */6 * * *"
  jitter         = "0s"
  concurrency    = 8
  retry_min      = "30s"
  retry_max      = "2h"
  shutdown_grace = "1m"
}
