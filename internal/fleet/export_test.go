package fleet

// CachedToken reads the token cache only (no etcd request, and it does not
// start the watch), for tests.
func (b *Backend) CachedToken(token string) (string, bool) {
	b.tokensMu.Lock()
	defer b.tokensMu.Unlock()
	v, ok := b.tokens[token]
	return v, ok
}
