# Domain lists: empty, invalid names, duplicates, wildcards with http.
acme {}

certificate "empty" {
  domains = []
  challenge "http" {}
}

certificate "invalid" {
  domains = [
    "localhost",
    "-bad.example.com",
    "under_score.example.com",
    "a..example.com",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com",
    "",
    "mid.*.example.com",
    "192.0.2.1",
  ]
  challenge "http" {}
}

certificate "dup" {
  domains = ["example.com", "www.example.com", "EXAMPLE.com.", "2001:db8::1", "2001:DB8::1"]
  challenge "http" {}
}

certificate "wild" {
  domains = ["*.example.com"]
  challenge "http" {}
}

certificate "nodomains" {
  challenge "http" {}
}
