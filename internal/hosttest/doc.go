// Package hosttest holds the test of renewer on the host it is for: the
// Debian package installed under a real systemd, beside Debian's nginx and
// HAProxy, in a throwaway container booted from this machine's own system
// (an overlay of / on a tmpfs, systemd-nspawn --private-network). It needs
// root and the Debian packages systemd-container, nginx, haproxy and
// lintian: without them it skips, loudly, unless CI is set; then it fails.
package hosttest
