acme { directory = "letsencrypt-staging" }
