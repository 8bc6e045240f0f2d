# Certificate and watch names are unique across the main file and conf.d.
acme {}

certificate "www" {
  domains = ["www.example.com"]
  challenge "http" {}
}

watch "cdn" { endpoint = "cdn.example.net" }
