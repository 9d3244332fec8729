#!/bin/sh
# Healthy once the real server answers on TCP: the temporary server of the
# first start listens on its socket only, so it never counts as ready.
# The entrypoint made a user for this check (a data directory made by an
# older image has none: then access is denied, which is logged, but
# mariadb-admin ping still succeeds, since the server is up).
set --
if [ -r /var/lib/mysql/.my-healthcheck.cnf ]; then
	set -- --defaults-extra-file=/var/lib/mysql/.my-healthcheck.cnf
fi
output=$(mariadb-admin "$@" --protocol=tcp --host=127.0.0.1 --port=3306 --connect-timeout=2 ping 2>&1) || {
	echo "$output" >&2
	exit 1
}
