# Bad durations and fractions.
acme {}

defaults {
  renew_before = "3/2"
}

certificate "a" {
  domains      = ["a.example.com"]
  renew_before = "30x"
  challenge "http" {}
  hook "h1" {
    command = ["true"]
    timeout = "0s"
  }
  hook "h2" {
    command = ["true"]
    timeout = "ten seconds"
  }
}

certificate "b" {
  domains      = ["b.example.com"]
  renew_before = "1.5"
  challenge "http" {}
}

certificate "c" {
  domains      = ["c.example.com"]
  renew_before = "-5d"
  challenge "http" {}
}

certificate "d" {
  domains      = ["d.example.com"]
  renew_before = "0/3"
  challenge "http" {}
}
