# Copied from the main file and from 10-api.hcl.
certificate "www" {
  domains = ["www2.example.com"]
  challenge "http" {}
}

certificate "api" {
  domains = ["api2.example.com"]
  challenge "http" {}
}

watch "cdn" { endpoint = "cdn2.example.net" }
