#!/bin/sh
# renewer hook: check HAProxy's configuration, then reload it gracefully.
#
#   hook "haproxy" { command = ["/usr/local/lib/renewer/haproxy-reload.sh"] }
#
# HAProxy runs in master-worker mode (-W or -Ws, as Debian's unit does).
# SIGUSR2 to the master makes it re-read its configuration and the
# certificates and start new workers; the old ones finish their connections.
# It is what `systemctl reload haproxy` and the master socket's "reload"
# command do. The master cannot tell us whether the reload worked, so the
# configuration (and with it the new certificate bundle) is checked first:
# if the check fails, nothing is reloaded and the hook fails.
#
#   HAPROXY_CFG      configuration file (default /etc/haproxy/haproxy.cfg)
#   HAPROXY_PIDFILE  the master's pid file (default /run/haproxy.pid)
set -eu
cfg=${HAPROXY_CFG:-/etc/haproxy/haproxy.cfg}
pidfile=${HAPROXY_PIDFILE:-/run/haproxy.pid}
haproxy -c -q -f "$cfg"
kill -USR2 "$(cat "$pidfile")"
