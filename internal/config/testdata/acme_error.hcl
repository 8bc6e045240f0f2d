# acme and storage settings.
storage {
  path          = ""
  keep_versions = -1
}

acme {
  directory = "ftp://acme.example.com/directory"
  email     = "Ops <ops@example.com>"
  ca_bundle = "missing.pem"
}

acme {
  directory = "letsencrypt"
}
