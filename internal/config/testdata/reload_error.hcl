acme {
  directory    = "https://ca.example/directory"
  accept_terms = true
}

reload "nginx" { command = ["systemctl", "reload", "nginx"] }
reload "nginx" { command = ["true"] }
reload "empty" {}

certificate "www" {
  domains = ["www.example.com"]
  challenge "http" { listen = ":80" }
  reload  = ["nginx", "apache", "nginx"]
}
