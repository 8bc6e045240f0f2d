#!/bin/sh
# renewer hook: check nginx's configuration, then reload it gracefully.
#
#   hook "nginx" { command = ["/usr/local/lib/renewer/nginx-reload.sh"] }
#
# Arguments are passed to every nginx call, for an nginx that does not use
# the default configuration (renewer's own tests run nginx with
# -p DIR -c FILE -e FILE). If the configuration is broken, nothing is
# reloaded, nginx keeps serving the old certificate, this hook fails, and
# renewer reports the certificate as "not applied" and retries on its next run.
set -eu
nginx "$@" -t -q
nginx "$@" -s reload
