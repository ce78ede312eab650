#!/bin/sh
# docker-entrypoint-initdb.d hook: add loadlab's settings (the same file `loadlab up` includes)
# to the new cluster; the server started after initialisation reads them.
echo "include '/etc/postgresql/loadlab.conf'" >> "$PGDATA/postgresql.conf"
