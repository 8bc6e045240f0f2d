# A conf.d file with global blocks: each is an error naming the rule.
acme {}
