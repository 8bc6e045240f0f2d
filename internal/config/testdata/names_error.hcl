# Certificate names: duplicates and names unfit for a directory.
acme {}

certificate "www" {
  domains = ["example.com"]
  challenge "http" {}
}

certificate "www" {
  domains = ["www.example.com"]
  challenge "http" {}
}

certificate "../etc" {
  domains = ["etc.example.com"]
  challenge "http" {}
}

certificate "has space" {
  domains = ["space.example.com"]
  challenge "http" {}
}

certificate "" {
  domains = ["empty.example.com"]
  challenge "http" {}
}
