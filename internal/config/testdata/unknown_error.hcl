# Unknown blocks and attributes, at every level.
acme {
  directory = "letsencrypt"
  emial     = "ops@example.com"
}

telemetry {
  listen = "127.0.0.1:9469"
}

certificate "www" {
  domains = ["example.com"]
  challenge "http" {
    listen = ":80"
    port   = 80
  }
  verify { endpoint = "127.0.0.1:443" }
  hook "reload" {
    command = ["true"]
    shell   = true
  }
}
