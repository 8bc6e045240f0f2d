acme { directory = "letsencrypt" }

fleet {
  node     = "edge-1"
  key_file = "fleet.key"
  node_gone_after = "15m"
  etcd {
    endpoints     = ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
    prefix        = "/renewer/prod"
    ca_file       = "etcd-ca.pem"
    cert_file     = "etcd-client.pem"
    key_file      = "etcd-client.key"
    username      = "renewer"
    password_file = "etcd.pass"
  }
}
