#!/bin/bash
# Entrypoint of the lessons' MySQL-compatible image (Debian's MariaDB).
#
# Behaves as the official mysql/mariadb images do: on the first start with an
# empty data directory it initialises it, starts a temporary server that only
# listens on its socket, sets the root password, creates MYSQL_DATABASE and
# MYSQL_USER, runs /docker-entrypoint-initdb.d/*.sql|*.sql.gz|*.sh, stops the
# temporary server, then runs mariadbd as user mysql on 0.0.0.0:3306.
# Every MYSQL_X variable has a MARIADB_X twin (MARIADB_ wins), and X_FILE
# reads the value from a file (for secrets).
set -Eeo pipefail
shopt -s nullglob

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock
HEALTHCHECK_CNF=$DATADIR/.my-healthcheck.cnf

log() { printf '%s [Entrypoint]: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S+00:00')" "$*"; }
fail() { log "ERROR: $*" >&2; exit 1; }
trap 'fail "line $LINENO: \"$BASH_COMMAND\" failed"' ERR

# setting NAME [TWIN]: the value of MARIADB_NAME, MYSQL_NAME, MARIADB_TWIN or
# MYSQL_TWIN (or of the file named by one of them with _FILE appended).
setting() {
	local name variable
	for name in "$@"; do
		for variable in "MARIADB_$name" "MYSQL_$name"; do
			if [ -n "${!variable:-}" ]; then
				printf '%s' "${!variable}"
				return
			fi
			variable="${variable}_FILE"
			if [ -n "${!variable:-}" ]; then
				[ -r "${!variable}" ] || fail "$variable names ${!variable}, which cannot be read"
				cat "${!variable}"
				return
			fi
		done
	done
}

sql_string() {  # a quoted SQL string literal
	local value=${1//\\/\\\\}
	printf "'%s'" "${value//\'/\\\'}"
}
sql_name() {  # a quoted SQL identifier
	printf '`%s`' "${1//\`/\`\`}"
}

if [ "${1:0:1}" = '-' ]; then
	set -- mariadbd "$@"
fi
case "$1" in
	mariadbd | mysqld) ;;
	*) exec "$@" ;;
esac

ROOT_PASSWORD=$(setting ROOT_PASSWORD)
ALLOW_EMPTY=$(setting ALLOW_EMPTY_ROOT_PASSWORD ALLOW_EMPTY_PASSWORD)
RANDOM_ROOT=$(setting RANDOM_ROOT_PASSWORD)
ROOT_HOST=$(setting ROOT_HOST)
ROOT_HOST=${ROOT_HOST:-%}
DATABASE=$(setting DATABASE)
USER_NAME=$(setting USER)
USER_PASSWORD=$(setting PASSWORD)

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$DATADIR" /run/mysqld
	chown mysql:mysql "$DATADIR" /run/mysqld
	chmod 0755 /run/mysqld
	server_user=(--user=mysql)
else
	server_user=()
fi

temporary_server_pid=
stop_temporary_server() {
	if [ -n "$temporary_server_pid" ]; then
		kill "$temporary_server_pid" 2>/dev/null || true
		wait "$temporary_server_pid" || true
		temporary_server_pid=
	fi
}

initialise() {
	if [ -z "$ROOT_PASSWORD" ] && [ -z "$ALLOW_EMPTY" ] && [ -z "$RANDOM_ROOT" ]; then
		cat >&2 <<-'EOF'
		error: database is uninitialized and password option is not specified
		  You need to specify one of the following as an environment variable:
		  - MYSQL_ROOT_PASSWORD (or MARIADB_ROOT_PASSWORD)
		  - MYSQL_ALLOW_EMPTY_PASSWORD (or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD)
		  - MYSQL_RANDOM_ROOT_PASSWORD (or MARIADB_RANDOM_ROOT_PASSWORD)
		  e.g. docker run -e MYSQL_ROOT_PASSWORD=my-secret-pw mysql
		EOF
		exit 1
	fi
	if [ "$USER_NAME" = root ]; then
		fail 'MYSQL_USER="root" is not allowed: MYSQL_ROOT_PASSWORD sets the root password; choose another user name'
	fi
	if [ -n "$USER_NAME" ] && [ -z "$USER_PASSWORD" ]; then
		fail "MYSQL_USER=$USER_NAME is given without MYSQL_PASSWORD: set the user's password too"
	fi

	log "Initializing database files in $DATADIR"
	mariadb-install-db "${server_user[@]}" --datadir="$DATADIR" --rpm --skip-test-db \
		--auth-root-authentication-method=normal --cross-bootstrap >/dev/null
	log 'Database files initialized'

	log 'Starting temporary server'
	mariadbd "${server_user[@]}" --datadir="$DATADIR" --skip-networking --socket="$SOCKET" \
		--skip-log-bin &
	temporary_server_pid=$!
	trap stop_temporary_server EXIT
	local tries
	for tries in $(seq 300); do
		if mariadb --protocol=socket --socket="$SOCKET" -uroot -e 'SELECT 1' >/dev/null 2>&1; then
			break
		fi
		kill -0 "$temporary_server_pid" 2>/dev/null || fail 'the temporary server exited during initialisation'
		sleep 0.1
	done
	[ "$tries" -lt 300 ] || fail 'the temporary server did not start within 30 seconds'
	log 'Temporary server started'

	if [ -n "$RANDOM_ROOT" ]; then
		# head closes the pipe early: tr's SIGPIPE is expected here.
		ROOT_PASSWORD=$(set +o pipefail; tr -dc 'A-Za-z0-9_,.+-' </dev/urandom | head -c 32)
		log "GENERATED ROOT PASSWORD: $ROOT_PASSWORD"
	fi

	local sql
	sql="SET @@SESSION.SQL_LOG_BIN=0;
DELETE FROM mysql.user WHERE user='' OR (user='root' AND host NOT IN ('localhost'));
ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$ROOT_PASSWORD");"
	if [ "$ROOT_HOST" != localhost ]; then
		sql+="
CREATE USER 'root'@$(sql_string "$ROOT_HOST") IDENTIFIED BY $(sql_string "$ROOT_PASSWORD");
GRANT ALL ON *.* TO 'root'@$(sql_string "$ROOT_HOST") WITH GRANT OPTION;"
	fi
	# The health check logs in as a user of its own, with no privileges, so
	# that its checks leave no "Access denied" warnings in the server's log.
	local healthcheck_password
	healthcheck_password=$(set +o pipefail; tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)
	sql+="
CREATE USER 'healthcheck'@'127.0.0.1' IDENTIFIED BY '$healthcheck_password';"
	printf '[client]\nuser=healthcheck\npassword=%s\n' "$healthcheck_password" >"$HEALTHCHECK_CNF"
	chmod 0600 "$HEALTHCHECK_CNF"
	if [ -n "$DATABASE" ]; then
		log "Creating database $DATABASE"
		sql+="
CREATE DATABASE IF NOT EXISTS $(sql_name "$DATABASE");"
	fi
	if [ -n "$USER_NAME" ]; then
		log "Creating user $USER_NAME"
		sql+="
CREATE USER $(sql_string "$USER_NAME")@'%' IDENTIFIED BY $(sql_string "$USER_PASSWORD");"
		if [ -n "$DATABASE" ]; then
			log "Giving user $USER_NAME access to schema $DATABASE"
			sql+="
GRANT ALL ON $(sql_name "${DATABASE//_/\\_}").* TO $(sql_string "$USER_NAME")@'%';"
		fi
	fi
	mariadb --protocol=socket --socket="$SOCKET" -uroot <<<"$sql;
FLUSH PRIVILEGES;"

	local client=(mariadb --protocol=socket --socket="$SOCKET" -uroot --password="$ROOT_PASSWORD")
	[ -z "$DATABASE" ] || client+=("$DATABASE")
	local file
	for file in /docker-entrypoint-initdb.d/*; do
		case "$file" in
			*.sh)
				log "running $file"
				if [ -x "$file" ]; then "$file"; else . "$file"; fi
				;;
			*.sql) log "running $file"; "${client[@]}" <"$file" ;;
			*.sql.gz) log "running $file"; gunzip -c "$file" | "${client[@]}" ;;
			*) log "ignoring $file" ;;
		esac
	done

	log 'Stopping temporary server'
	stop_temporary_server
	trap - EXIT
	log 'Temporary server stopped'
	log 'MariaDB init process done. Ready for start up.'
}

if [ ! -d "$DATADIR/mysql" ]; then
	initialise
fi

shift
exec mariadbd "${server_user[@]}" --bind-address=0.0.0.0 --port=3306 "$@"
