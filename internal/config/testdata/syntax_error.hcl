acme {
  directory = "letsencrypt
}
