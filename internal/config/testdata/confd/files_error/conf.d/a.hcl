certificate "a" {
  domains = ["a.example.com"
  challenge "http" {}
}
