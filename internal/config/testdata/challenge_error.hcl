# Challenge blocks: missing, duplicated, unsupported, bad settings.
acme {}

certificate "nowebroot" {
  domains = ["a.example.com"]
  challenge "http" {
    webroot = "does-not-exist"
  }
}

certificate "filewebroot" {
  domains = ["b.example.com"]
  challenge "http" {
    webroot = "secret.txt"
  }
}

certificate "both" {
  domains = ["c.example.com"]
  challenge "http" {
    listen  = ":80"
    webroot = "webroot"
  }
}

certificate "smtp" {
  domains = ["*.example.com"]
  challenge "smtp" {
    provider = "cloudflare"
  }
}

certificate "none" {
  domains = ["d.example.com"]
}

certificate "two" {
  domains = ["e.example.com"]
  challenge "http" {}
  challenge "http" { listen = ":8080" }
}

certificate "ports" {
  domains = ["f.example.com"]
  challenge "http" {
    listen = ":0"
  }
}

certificate "noport" {
  domains = ["g.example.com"]
  challenge "http" {
    listen = "localhost"
  }
}
