# env() and file() failures, unknown functions, variables.
acme {
  email = env("RENEWER_UNSET")
}

certificate "www" {
  domains = [file("missing.txt")]
  challenge "http" {}
  hook "reload" {
    command = [upper("nginx")]
    env     = { TOKEN = var.token }
  }
}
