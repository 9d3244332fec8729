#!/bin/sh
# Healthy once the real server answers on TCP: the temporary server of the
# first start listens on its socket only, so it never counts as ready.
# mariadb-admin ping succeeds even when access is denied: the server is up.
output=$(mariadb-admin --protocol=tcp --host=127.0.0.1 --port=3306 --connect-timeout=2 ping 2>&1) || {
	echo "$output" >&2
	exit 1
}
