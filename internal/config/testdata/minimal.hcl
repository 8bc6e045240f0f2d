acme {}
