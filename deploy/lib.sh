# shellcheck shell=bash disable=SC2034  # PG_URL is read by the scripts that source this
# Shared by deploy/backup.sh and deploy/restore.sh (sourced; they define `die`).

percent_decode() {
	printf '%b' "${1//%/\\x}"
}

# Sets PG_URL, a libpq URI for DATABASE_URL without its password, and
# exports the password as PGPASSWORD: a command line is readable by every
# local user (ps), a process's environment only by its owner.
pg_connection() {
	local url=$1 scheme rest userinfo
	scheme=${url%%://*}
	case $scheme in
	postgres | postgresql | pgsql) ;;
	sqlite) die "DATABASE_URL is SQLite: backups are for PostgreSQL (production). Copy the SQLite file while the site is stopped." ;;
	*) die "DATABASE_URL must be a postgres:// URL (got the scheme '$scheme')." ;;
	esac
	rest=${url#*://}
	if [[ $rest == *@* ]]; then
		userinfo=${rest%%@*}
		rest=${rest#*@}
		if [[ $userinfo == *:* ]]; then
			PGPASSWORD=$(percent_decode "${userinfo#*:}")
			export PGPASSWORD
			userinfo=${userinfo%%:*}
		fi
		rest="$userinfo@$rest"
	fi
	PG_URL="postgresql://$rest"
}

require_commands() {
	local command
	for command in "$@"; do
		command -v "$command" >/dev/null || die "$command is not installed (Debian: postgresql-client, tar, coreutils, gpg)."
	done
}
