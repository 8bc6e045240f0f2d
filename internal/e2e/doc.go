// Package e2e holds renewer's end-to-end tests: the renewer command line,
// in-process, against a real Pebble CA, deploying to real nginx and HAProxy
// processes (Debian packages) and migrating lineages made by the real
// certbot. The tests need those programs: without them they skip when the
// CI environment variable is unset, and fail when it is set (.ci/run
// installs them).
package e2e
