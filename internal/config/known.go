package config

// KnownDirectory resolves one of the directory shorthands the acme block
// accepts ("letsencrypt", "zerossl", ...) into its URL.
func KnownDirectory(name string) (string, bool) {
	k, ok := knownDirectories[name]
	return k[0], ok
}
