acme { directory = "https://acme.internal:14000/dir" }
