certificate "b" {
  domains = ["b..example.com"]
  challenge "http" { webroot = "no-such-dir" }
  hook "h" { command = [env("RENEWER_TEST_UNSET")] }
}
