acme { directory = "letsencrypt" }

fleet {
  node     = "-edge"
  lock_ttl = "1s"
  node_gone_after = "500ms"
  etcd {
    endpoints = []
    prefix    = "renewer/"
    cert_file = "client.pem"
    username  = "renewer"
  }
}
