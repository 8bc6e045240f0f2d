# verify blocks: missing endpoint, bad endpoint, bad SNI, bad timeout,
# duplicates, and a wildcard-only certificate without server_name.
acme {}

certificate "www" {
  domains = ["example.com"]
  challenge "http" {}
  verify {}
  verify { endpoint = "localhost" }
  verify {
    endpoint    = "127.0.0.1:443"
    server_name = "*.example.com"
  }
  verify {
    endpoint = "127.0.0.1:8443"
    timeout  = "0s"
  }
  verify { endpoint = "127.0.0.1:8443" }
  verify {
    endpoint = "127.0.0.1:443"
    color    = "blue"
  }
}
