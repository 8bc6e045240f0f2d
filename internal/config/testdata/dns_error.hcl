# DNS challenges and the CA settings of issue 3: every mistake at its place.
acme {
  eab {
    kid  = ""
    hmac = "not base64!"
  }
  fallback {
    ca_bundle = "roots.pem"
  }
  fallback {
    directory = "letsencrypt"
  }
}

certificate "typo" {
  domains = ["*.example.com"]
  challenge "dns" {
    provider = "cloudfare"
  }
}

certificate "noprovider" {
  domains = ["a.example.com"]
  challenge "dns" {
    env = { "1BAD" = "x" }
  }
}

certificate "settings" {
  domains = ["b.example.com", "192.0.2.7"]
  profile = "short lived"
  challenge "dns" {
    provider            = "rfc2136"
    propagation_timeout = "0s"
    polling_interval    = "soon"
    resolvers           = ["127.0.0.1:53", "ns/1", "[::1]:99999"]
  }
}

certificate "alpn" {
  domains = ["*.c.example.com"]
  challenge "tls-alpn" {
    listen = "443"
  }
}
