acme {
  directory = "letsencrypt"
  email     = "ops@example.com"
}

certificate "www" {
  domains  = ["example.com", "www.example.com", "example.com"]
  key_type = "ec521"
  challenge "http" {
    webroot = "/nonexistent/renewer-webroot"
  }
}
