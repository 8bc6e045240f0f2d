# Metrics and watch blocks: every kind of mistake.
acme {}

defaults {
  warn_before = "soon"
}

certificate "www" {
  domains     = ["example.com"]
  warn_before = "2/1"
  challenge "http" {}
}

metrics {
  listen = "localhost"
}

metrics {}

watch "nohost" {
  endpoint = ":443"
}

watch "bad name" {
  endpoint = "a.example.com:443"
}

watch "thresholds" {
  endpoint        = "a.example.com:99999"
  server_name     = "*.example.com"
  warn_before     = "0s"
  critical_before = "30d"
  timeout         = "5s"
}

watch "thresholds" {
  endpoint = "b.example.com:443"
  ca_bundle = "notpem.txt"
}

watch "noendpoint" {
  warn_before = "10d"
}
