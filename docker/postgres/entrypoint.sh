#!/bin/sh
# First start: a cluster owned by POSTGRES_USER (password POSTGRES_PASSWORD) with a database of
# the same name, reachable from the network with that password. Then the server, in the
# foreground. Only dash builtins here: the image has no coreutils.
set -eu
user=${POSTGRES_USER:-postgres}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    umask 077
    printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}" >/tmp/pwfile
    initdb --pgdata="$PGDATA" --username="$user" --pwfile=/tmp/pwfile --auth=scram-sha-256 \
        --encoding=UTF8 --locale=C
    : >/tmp/pwfile
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ "$user" != postgres ]; then
        echo "CREATE DATABASE \"$user\";" | postgres --single -D "$PGDATA" postgres >/dev/null
    fi
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp "$@"
