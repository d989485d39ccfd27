#!/usr/bin/env bash
# Back up ODR Mediation (docs/operations.md, "Backups and restore").
#
#   backup.sh DEST_DIR
#       The data, nightly (deploy/systemd/odr-backup.service): the database
#       (pg_dump custom format), MEDIA_ROOT and ODR_PRIVATE_ROOT (tar.gz), and
#       SHA256SUMS, in DEST_DIR/odr-<UTC timestamp>/. It holds no key: the
#       content in it is sealed under per-case data keys wrapped by the master
#       key, so a stolen data backup is unreadable.
#
#   backup.sh --keys-only DEST_DIR
#       The keys, by hand whenever one changes: the environment file (with
#       ODR_MASTER_KEY, SECRET_KEY, ODR_SEAL_PASSPHRASE), the seal's PKCS#12
#       and the trusted roots, as one file DEST_DIR/odr-keys-<UTC timestamp>.tar.gpg,
#       encrypted and authenticated by gpg (AES-256, integrity-protected) under
#       the passphrase in the file ODR_KEYS_PASSPHRASE_FILE names.
#
# Settings are read as odr/settings.py reads them: from the environment, else
# from the file ODR_ENV_FILE names (KEY=value lines; never executed). The
# keys backup copies that file, /etc/odr/env by default.
#
# Prints the path of what it wrote on stdout; progress goes to stderr.
set -euo pipefail
umask 077 # backups are readable by their owner only

readonly DATA_FORMAT="format: odr-data-backup 1"
readonly MIN_PASSPHRASE_CHARS=16
# gpg's strongest passphrase hashing: iterated and salted SHA-512, the
# largest iteration count OpenPGP can express.
readonly GPG_SYMMETRIC=(--symmetric --cipher-algo AES256 --s2k-mode 3 --s2k-digest-algo SHA512 --s2k-count 65011712)

die() {
	printf 'backup.sh: %s\n' "$*" >&2
	exit 1
}

say() {
	printf 'backup.sh: %s\n' "$*" >&2
}

usage() {
	die "usage: backup.sh DEST_DIR | backup.sh --keys-only DEST_DIR"
}

# Removed on exit, whatever happens: partial output and private temporaries
# (a finished backup has been renamed away from its temporary name by then).
TEMPORARIES=()
GNUPG_HOME=""
cleanup() {
	if [[ -n $GNUPG_HOME ]]; then
		gpgconf --homedir "$GNUPG_HOME" --kill gpg-agent 2>/dev/null || true
	fi
	rm -rf -- "${TEMPORARIES[@]}"
}
trap cleanup EXIT

# A setting as odr/settings.py sees it: the environment wins, then the last
# NAME=value line of ODR_ENV_FILE (optionally quoted), else $2.
setting() {
	local name=$1 default=${2-} line value="" found=""
	if [[ -n ${!name-} ]]; then
		printf '%s' "${!name}"
		return
	fi
	if [[ -n ${ODR_ENV_FILE-} ]]; then
		[[ -r $ODR_ENV_FILE ]] || die "ODR_ENV_FILE=$ODR_ENV_FILE cannot be read."
		while IFS= read -r line || [[ -n $line ]]; do
			line=${line#export }
			if [[ $line == "$name="* ]]; then
				value=${line#"$name="}
				found=1
			fi
		done <"$ODR_ENV_FILE"
	fi
	if [[ -z $found ]]; then
		printf '%s' "$default"
	elif [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
		printf '%s' "${BASH_REMATCH[1]}"
	else
		printf '%s' "$value"
	fi
}

# Like `setting`, but the script cannot go on without it.
required_setting() {
	local value
	value=$(setting "$1")
	[[ -n $value ]] || die "$1 is not set. Set it in the environment, or point ODR_ENV_FILE at the environment file (production: /etc/odr/env)."
	printf '%s' "$value"
}

# shellcheck source=deploy/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


# A gzipped tar of a directory's contents.
archive_root() {
	local root=$1 archive=$2
	tar --create --gzip --file="$archive" --directory="$root" .
}

backup_data() {
	local dest=$1 database_url media_root private_root root stamp work final
	database_url=$(required_setting DATABASE_URL)
	media_root=$(required_setting MEDIA_ROOT)
	private_root=$(required_setting ODR_PRIVATE_ROOT)
	require_commands pg_dump tar sha256sum
	pg_connection "$database_url"
	# A root that is not there is a wrong setting, not an empty backup.
	for root in "$media_root" "$private_root"; do
		[[ -d $root ]] || die "$root does not exist (MEDIA_ROOT, ODR_PRIVATE_ROOT): check the setting, or create it empty on a new site."
	done

	mkdir -p "$dest"
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	final="$dest/odr-$stamp"
	[[ ! -e $final ]] || die "$final already exists."
	# Written under a hidden name and renamed when complete, so that an
	# interrupted run never looks like a backup (nor matches the cleanup's odr-*).
	work=$(mktemp -d "$dest/.partial-odr-$stamp.XXXXXX")
	TEMPORARIES+=("$work")

	say "dumping the database"
	# The database first, then the files: a room document's file is written
	# before its row commits, so every document in the dump has its file in
	# the archive (files newer than the dump are harmless orphans).
	pg_dump --format=custom --file="$work/database.dump" --dbname="$PG_URL"
	say "archiving $media_root and $private_root"
	archive_root "$media_root" "$work/media.tar.gz"
	archive_root "$private_root" "$work/private.tar.gz"
	{
		printf '%s\n' "$DATA_FORMAT"
		printf 'created: %s\n' "$stamp"
		printf 'database: %s\n' "$(basename "${PG_URL%%\?*}")"
		printf 'pg_dump: %s\n' "$(pg_dump --version)"
	} >"$work/info.txt"
	(cd "$work" && sha256sum info.txt database.dump media.tar.gz private.tar.gz >SHA256SUMS)

	mv "$work" "$final"
	say "data backup complete; it holds no key (back the keys up with --keys-only)."
	printf '%s\n' "$final"
}

# The paths of comma-separated lists (as django-environ splits them), one a line.
each_path() {
	local path
	local -a paths
	IFS=',' read -r -a paths <<<"$1"
	for path in "${paths[@]}"; do
		[[ -z $path ]] || printf '%s\n' "$path"
	done
}

backup_keys() {
	local dest=$1 passphrase_file passphrase="" env_file stamp bundle path
	local -a files
	passphrase_file=${ODR_KEYS_PASSPHRASE_FILE-}
	[[ -n $passphrase_file ]] || die "ODR_KEYS_PASSPHRASE_FILE is not set: name a file holding the passphrase that will encrypt the keys."
	[[ -r $passphrase_file ]] || die "ODR_KEYS_PASSPHRASE_FILE=$passphrase_file cannot be read."
	# gpg reads the first line of the file as the passphrase.
	IFS= read -r passphrase <"$passphrase_file" || true
	((${#passphrase} >= MIN_PASSPHRASE_CHARS)) ||
		die "the passphrase in $passphrase_file is shorter than $MIN_PASSPHRASE_CHARS characters."
	export ODR_ENV_FILE=${ODR_ENV_FILE:-/etc/odr/env}
	env_file=$ODR_ENV_FILE
	[[ -r $env_file ]] || die "the environment file $env_file cannot be read (set ODR_ENV_FILE)."
	# The one key nothing can replace must be in what is backed up.
	grep -Eq '^(export )?ODR_MASTER_KEY=.' "$env_file" ||
		die "$env_file does not set ODR_MASTER_KEY: the bundle would not hold the master key."
	require_commands tar gpg gpgconf

	# Key files are named by their absolute paths, so that a restore puts
	# them back where the settings expect them.
	files=("$env_file")
	path=$(setting ODR_SEAL_PKCS12)
	[[ -z $path ]] || files+=("$path")
	while IFS= read -r path; do
		files+=("$path")
	done < <(each_path "$(setting ODR_TRUST_ROOTS),$(setting ODR_SIGNER_TRUST_ROOTS)" | sort -u)
	for path in "${files[@]}"; do
		[[ $path == /* ]] || die "$path is not an absolute path."
		[[ -f $path && -r $path ]] || die "$path (a key or trust file named in the settings) cannot be read."
	done

	mkdir -p "$dest"
	# Keys next to the data would undo their separation (and the nightly
	# cleanup of odr-* would delete them).
	if compgen -G "$dest/odr-*/SHA256SUMS" >/dev/null; then
		die "$dest holds data backups: keep the keys elsewhere (offline, in the organisation's safe)."
	fi
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	bundle="$dest/odr-keys-$stamp.tar.gpg"
	[[ ! -e $bundle ]] || die "$bundle already exists."
	# A keyring of our own: nothing of the operator's is read or changed, and
	# the agent gpg starts for it is stopped afterwards.
	GNUPG_HOME=$(mktemp -d)
	TEMPORARIES+=("$GNUPG_HOME" "$bundle.partial")

	say "encrypting ${#files[@]} files: ${files[*]}"
	# Their directories too (not what else is in them), so that a restore on a
	# new machine recreates /etc/odr with its owner and mode. The plaintext
	# goes through the pipe only, never to disk.
	{
		for path in "${files[@]}"; do dirname "$path"; done | sort -u
		printf '%s\n' "${files[@]}"
	} | sed 's|^/||' |
		tar --create --file=- --directory=/ --no-recursion --verbatim-files-from --files-from=- |
		gpg --homedir "$GNUPG_HOME" --batch --quiet --no-symkey-cache --pinentry-mode loopback \
			--passphrase-file "$passphrase_file" "${GPG_SYMMETRIC[@]}" --output "$bundle.partial"
	mv "$bundle.partial" "$bundle"
	say "keys backup complete: store it offline, apart from the data backups, and the passphrase apart from both."
	printf '%s\n' "$bundle"
}

main() {
	case ${1-} in
	--keys-only)
		[[ $# -eq 2 ]] || usage
		backup_keys "$2"
		;;
	-* | "") usage ;;
	*)
		[[ $# -eq 1 ]] || usage
		backup_data "$1"
		;;
	esac
}

main "$@"
