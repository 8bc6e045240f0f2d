# Notify blocks: every kind of mistake. Secret values are never echoed.
acme {}

notify "none" {
  on = ["failure"]
}

notify "both" {
  webhook = "https://hooks.example.com/T0K3N"
  slack   = "https://hooks.slack.example/T0K3N"
}

notify "badurl" {
  webhook = "ftp://T0K3N@example.com/"
  headers = { "Bad Header" = "x" }
  on      = ["failure", "expired", "renewed"]
  repeat  = "-1h"
}

notify "slackheaders" {
  slack   = "https://hooks.slack.example/T0K3N"
  headers = { Authorization = "x" }
  on      = []
}

notify "mail" {
  email {
    smtp     = "smtp.example.com"
    tls      = "ssl"
    username = "renewer"
    from     = "not an address"
    to       = ["ops@example.com", "@@"]
  }
}

notify "cleartext" {
  email {
    tls      = "none"
    username = "renewer"
    password = "hunter2"
  }
}

notify "mail" {
  slack = "https://hooks.slack.example/T0K3N"
}
