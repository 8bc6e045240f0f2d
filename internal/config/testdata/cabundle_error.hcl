# A ca_bundle with no certificate in it; a bad e-mail; a relative URL.
acme {
  directory = "acme.example.com/directory"
  email     = "not an address"
  ca_bundle = "notpem.txt"
}
