#!/bin/sh
# Renders /home/postgres/postgres${NODE_ID}.yml from the environment (so the
# SOP's `patronictl -c /home/postgres/postgresN.yml` works verbatim), prepares
# the bind-mounted data dir and runs Patroni as the postgres user.
set -eu
: "${NODE_ID:?NODE_ID must be set}"
DATA=/home/postgres/data
CONF="/home/postgres/postgres${NODE_ID}.yml"
mkdir -p "$DATA" /var/run/postgresql
chown postgres:postgres "$DATA" /var/run/postgresql
chmod 0700 "$DATA"
umask 077
python3 /usr/local/bin/render-config.py > "$CONF"
chown postgres:postgres "$CONF"
exec setpriv --reuid=postgres --regid=postgres --init-groups \
  env HOME=/home/postgres /opt/patroni/bin/patroni "$CONF"
