# Metrics, watches, notifications and warn_before, all valid.
acme {}

defaults {
  warn_before = "14d"
}

certificate "www" {
  domains = ["example.com"]
  challenge "http" {}
}

certificate "api" {
  domains     = ["api.example.com"]
  warn_before = "1/4"
  challenge "http" {}
}

metrics {}

watch "megaphone" {
  endpoint = "cdn.example.net:443"
}

watch "ip" {
  endpoint        = "192.0.2.7:8443"
  server_name     = "Legacy.Example.NET."
  warn_before     = "30d"
  critical_before = "10d"
  ca_bundle       = "roots.pem"
}

watch "bare" {
  endpoint = "bare.example.net"
}

notify "ops" {
  webhook = "https://hooks.example.com/T0K3N"
  headers = { Authorization = "Bearer s3cr3t" }
  on      = ["failure", "expiring"]
  repeat  = "12h"
}

notify "chat" {
  slack = "https://hooks.slack.example/services/T/B/XYZ"
}

notify "mail" {
  on = ["all"]
  email {
    smtp     = "smtp.example.com:587"
    username = "renewer"
    password = "hunter2"
    from     = "renewer@example.com"
    to       = ["ops@example.com", "Oncall <oncall@example.com>"]
  }
}
