acme { directory = "letsencrypt" }

fleet {
  node     = "-edge"
  lock_ttl = "1s"
  etcd {
    endpoints = []
    prefix    = "renewer/"
    cert_file = "client.pem"
    username  = "renewer"
  }
}
