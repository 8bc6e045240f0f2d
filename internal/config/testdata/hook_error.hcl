# Hooks: duplicate names, empty commands, bad env names.
acme {}

certificate "www" {
  domains = ["example.com"]
  challenge "http" {}

  hook "reload" {
    command = ["nginx", "-s", "reload"]
  }
  hook "reload" {
    command = ["systemctl", "reload", "nginx"]
  }
  hook "empty" {
    command = []
  }
  hook "blank" {
    command = ["", "-c", "true"]
  }
  hook "nocommand" {
    timeout = "10s"
  }
  hook "env" {
    command = ["true"]
    env     = { GOOD = "1", "1BAD" = "2", "WITH-DASH" = "3" }
  }
}
