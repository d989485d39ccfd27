#!/usr/bin/env bash
# Restore ODR Mediation from what deploy/backup.sh wrote (docs/operations.md,
# "Backups and restore").
#
#   restore.sh BACKUP_DIR [--keys BUNDLE]
#   restore.sh --keys BUNDLE
#
# BACKUP_DIR is a data backup (DEST_DIR/odr-<timestamp>); BUNDLE a keys backup
# (odr-keys-<timestamp>.tar.gpg), decrypted with the passphrase in the file
# ODR_KEYS_PASSPHRASE_FILE names.
#
# Everything is checked before anything changes: the data backup's checksums
# and format, that the key bundle decrypts (gpg authenticates it: a changed
# byte or a wrong passphrase fails), that no existing key file differs from
# the one it would be replaced with, that the settings are there and that the
# file roots are empty. Then the database is restored into DATABASE_URL (an
# existing database, e.g. a fresh `createdb`; the backup's objects are dropped
# and recreated in one transaction), the files into MEDIA_ROOT and
# ODR_PRIVATE_ROOT, and the key files to the absolute paths they were backed
# up from.
#
# Settings are read as odr/settings.py reads them: from the environment, else
# from the file ODR_ENV_FILE names; when that file is in the key bundle, from
# the bundle's copy (a new machine gets its settings from the bundle).
set -euo pipefail
umask 077

readonly DATA_FORMAT="format: odr-data-backup 1"
# What backup.sh lists in SHA256SUMS, in sorted order.
readonly LISTED_FILES=(database.dump info.txt media.tar.gz private.tar.gz)
APP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly APP_DIR

die() {
	printf 'restore.sh: %s\n' "$*" >&2
	exit 1
}

say() {
	printf 'restore.sh: %s\n' "$*" >&2
}

usage() {
	die "usage: restore.sh BACKUP_DIR [--keys BUNDLE] | restore.sh --keys BUNDLE"
}

# Removed on exit, whatever happens: the decrypted keys and gpg's home.
TEMPORARIES=()
GNUPG_HOME=""
cleanup() {
	if [[ -n $GNUPG_HOME ]]; then
		gpgconf --homedir "$GNUPG_HOME" --kill gpg-agent 2>/dev/null || true
	fi
	rm -rf -- "${TEMPORARIES[@]}"
}
trap cleanup EXIT

# The environment file settings are read from (see the header).
SETTINGS_FILE=${ODR_ENV_FILE-}

# A setting as odr/settings.py sees it: the environment wins, then the last
# NAME=value line of the settings file (optionally quoted).
setting() {
	local name=$1 line value="" found=""
	if [[ -n ${!name-} ]]; then
		printf '%s' "${!name}"
		return
	fi
	if [[ -n $SETTINGS_FILE ]]; then
		[[ -r $SETTINGS_FILE ]] || die "ODR_ENV_FILE=$SETTINGS_FILE cannot be read."
		while IFS= read -r line || [[ -n $line ]]; do
			line=${line#export }
			if [[ $line == "$name="* ]]; then
				value=${line#"$name="}
				found=1
			fi
		done <"$SETTINGS_FILE"
	fi
	if [[ -n $found && ($value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$) ]]; then
		value=${BASH_REMATCH[1]}
	fi
	[[ -n $value ]] || die "$name is not set. Set it in the environment, or point ODR_ENV_FILE at the environment file (production: /etc/odr/env)."
	printf '%s' "$value"
}

# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


# --- Checks: nothing is changed until all of them pass --------------------------

# The backup is complete and unchanged since backup.sh wrote it.
verify_data_backup() {
	local dir=$1 name
	[[ -d $dir ]] || die "$dir is not a directory."
	[[ -f $dir/SHA256SUMS ]] || die "$dir/SHA256SUMS is missing: not a complete backup. Nothing was restored."
	for name in "${LISTED_FILES[@]}"; do
		[[ -f $dir/$name ]] || die "$dir/$name is missing: not a complete backup. Nothing was restored."
	done
	# Exactly the files backup.sh lists, each with the digest it recorded.
	if [[ $(awk '{print $2}' "$dir/SHA256SUMS" | sort | paste -sd ' ') != "${LISTED_FILES[*]}" ]]; then
		die "$dir/SHA256SUMS does not list the files of a data backup. Nothing was restored."
	fi
	if ! (cd "$dir" && sha256sum --check --strict --quiet SHA256SUMS) >&2; then
		die "the checksums of $dir do not match (the files named above were changed or damaged since the backup). Nothing was restored."
	fi
	[[ $(head -n 1 "$dir/info.txt") == "$DATA_FORMAT" ]] || die "$dir is not a data backup of this version ($DATA_FORMAT). Nothing was restored."
}

# Decrypts the bundle into STAGING/files (by absolute path) and lists the
# key files in KEY_FILES; refuses when one would replace a different file.
STAGING=""
KEY_FILES=()
stage_keys() {
	local bundle=$1 passphrase_file target
	passphrase_file=${ODR_KEYS_PASSPHRASE_FILE-}
	[[ -n $passphrase_file ]] || die "ODR_KEYS_PASSPHRASE_FILE is not set: name the file holding the keys' passphrase."
	[[ -r $passphrase_file ]] || die "ODR_KEYS_PASSPHRASE_FILE=$passphrase_file cannot be read."
	[[ -f $bundle ]] || die "$bundle does not exist."
	require_commands gpg gpgconf tar cmp
	STAGING=$(mktemp -d)
	GNUPG_HOME=$(mktemp -d)
	TEMPORARIES+=("$STAGING" "$GNUPG_HOME")

	# gpg writes what it decrypted before it can tell it was tampered with:
	# the output is used only if gpg succeeded.
	if ! gpg --homedir "$GNUPG_HOME" --batch --quiet --no-symkey-cache --pinentry-mode loopback \
		--passphrase-file "$passphrase_file" --decrypt --output "$STAGING/keys.tar" "$bundle"; then
		die "$bundle does not decrypt: a wrong passphrase, or the file was changed or damaged. Nothing was restored."
	fi
	mkdir "$STAGING/files"
	tar --extract --file="$STAGING/keys.tar" --directory="$STAGING/files"
	while IFS= read -r target; do
		KEY_FILES+=("$target")
	done < <(cd "$STAGING/files" && find . -type f | sed 's|^\.||' | sort)
	((${#KEY_FILES[@]} > 0)) || die "$bundle holds no files."
	for target in "${KEY_FILES[@]}"; do
		if [[ -e $target ]] && ! cmp -s "$STAGING/files$target" "$target"; then
			die "$target exists and differs from the backed-up copy: move it aside first if the backup's is the one to keep. Nothing was restored."
		fi
	done
	if [[ -n $SETTINGS_FILE && -f $STAGING/files$SETTINGS_FILE ]]; then
		SETTINGS_FILE=$STAGING/files$SETTINGS_FILE
	fi
}

root_is_empty() {
	[[ ! -e $1 || -z $(find "$1" -mindepth 1 -maxdepth 1 -print -quit) ]]
}

# --- Changes --------------------------------------------------------------------

restore_database() {
	local dump=$1
	say "restoring the database (one transaction)"
	# --no-owner/--no-privileges: the objects belong to DATABASE_URL's user,
	# whatever the roles of the machine the backup came from.
	pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction \
		--dbname="$PG_URL" "$dump"
}

restore_root() {
	local archive=$1 root=$2
	say "restoring $root"
	# Missing ancestors as ordinary directories; the root itself gets the
	# owner and mode it had from the archive's first entry, "./".
	(umask 022 && mkdir -p "$root")
	tar --extract --gzip --file="$archive" --directory="$root"
}

install_keys() {
	local target parent
	for target in "${KEY_FILES[@]}"; do
		if [[ -e $target ]]; then
			say "$target is already in place"
			continue
		fi
		parent=$(dirname "$target")
		if [[ ! -d $parent ]]; then
			# Missing ancestors as ordinary directories; the key directory
			# itself with the owner and mode it had (the service user reads
			# the seal and the roots through it).
			(umask 022 && mkdir -p "$parent")
			chmod --reference="$STAGING/files$parent" "$parent"
			if ((EUID == 0)); then
				chown --reference="$STAGING/files$parent" "$parent"
			fi
		fi
		cp -p "$STAGING/files$target" "$target"
		say "restored $target"
	done
}

next_steps() {
	cat >&2 <<EOF

Restored. Next, in $APP_DIR as the service user, with the application's
environment (ODR_ENV_FILE=/etc/odr/env) and Python:
  1. python manage.py migrate          if this release is newer than the backup
  2. python manage.py retention_sweep  destroys again the content that fell due
                                       since the backup was taken
  3. python manage.py verify_audit     the audit chain must be intact
  4. systemctl restart odr.target      then check GET /readyz
The content reads only with the master key in force when the backup was taken
(ODR_MASTER_KEY, or one of ODR_PREVIOUS_MASTER_KEYS).
EOF
}

main() {
	local backup_dir="" bundle="" database_url media_root private_root root
	while (($#)); do
		case $1 in
		--keys)
			(($# >= 2)) || usage
			bundle=$2
			shift 2
			;;
		-*) usage ;;
		*)
			[[ -z $backup_dir ]] || usage
			backup_dir=$1
			shift
			;;
		esac
	done
	[[ -n $backup_dir || -n $bundle ]] || usage

	if [[ -n $bundle ]]; then
		stage_keys "$bundle"
	fi
	if [[ -n $backup_dir ]]; then
		require_commands pg_restore tar sha256sum
		verify_data_backup "$backup_dir"
		database_url=$(setting DATABASE_URL)
		media_root=$(setting MEDIA_ROOT)
		private_root=$(setting ODR_PRIVATE_ROOT)
		for root in "$media_root" "$private_root"; do
			root_is_empty "$root" || die "$root is not empty: move it aside (mv $root $root.old) and run again. Nothing was restored."
		done
		pg_connection "$database_url"

		restore_database "$backup_dir/database.dump"
		restore_root "$backup_dir/media.tar.gz" "$media_root"
		restore_root "$backup_dir/private.tar.gz" "$private_root"
	fi
	if [[ -n $bundle ]]; then
		install_keys
	fi
	if [[ -n $backup_dir ]]; then
		next_steps
	else
		say "keys restored; now restore the data: restore.sh BACKUP_DIR (with ODR_ENV_FILE set)."
	fi
}

main "$@"
