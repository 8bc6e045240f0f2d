certificate "api" {
  domains = ["api.example.com"]
  challenge "http" {}
}
