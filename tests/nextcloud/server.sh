#!/usr/bin/env bash
# A throwaway real Nextcloud 32.0.1 on loopback, for the real-server test suite and for a person
# trying the connector: PHP's built-in server, SQLite, users alice and bob with app passwords.
# Run with --help for usage. Progress goes to stderr; `up` and `env` print shell exports on stdout,
# so that `eval "$(tests/nextcloud/server.sh up)"` works.
set -euo pipefail

readonly NC_VERSION=32.0.1
readonly NC_ARCHIVE_SHA256=37b353630e934a122d81b9d9b847fd39e44e807b69aa9192bc6667299223f4f1
readonly PHP=php8.2
readonly PHP_PACKAGES=(php8.2-cli php8.2-opcache php8.2-sqlite3 php8.2-xml php8.2-mbstring php8.2-gd
	php8.2-curl php8.2-zip php8.2-intl php8.2-bcmath php8.2-gmp php8.2-apcu)
# Modules that `php -m` lists once those packages are in.
readonly PHP_MODULES=(apcu bcmath ctype curl dom gd gmp intl mbstring pdo_sqlite simplexml sqlite3
	xmlreader xmlwriter zip 'Zend OPcache')
readonly STATE_MARK=.nextcloud-server-state

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)
SHARED_DIR=$(cd "$REPO_DIR/.." && pwd)/shared

usage() {
	cat <<EOF
Usage: tests/nextcloud/server.sh [OPTIONS] COMMAND

A throwaway real Nextcloud $NC_VERSION on 127.0.0.1 (PHP's built-in server, SQLite), for the
real-server tests and for trying the connector. Users alice and bob, each with an app password.

Commands:
  up                 Install if needed (PHP packages by apt-get, unpack, occ install, users),
                     start the server, smoke-check it, print its env on stdout. A no-op that
                     prints the env when it already runs.
  env                Print the env of the running server as shell export lines.
  status             Say whether it runs and where; exit 0 if it runs and answers, 1 if not.
  down [--purge]     Stop the server (its whole process group). --purge also deletes the state
                     directory (install, data, passwords). No error when nothing runs.
  purge              Same as down --purge.
  reset-bruteforce   occ security:bruteforce:reset 127.0.0.1 (after tests that send wrong
                     passwords: >10 failures in 30 min make every login from 127.0.0.1 get 429).

Options (each also settable by the environment variable named):
  --state DIR        NEXTCLOUD_STATE_DIR  state directory: install, data, logs, env, passwords
                     (default \${XDG_CACHE_HOME:-\$HOME/.cache}/nextcloud-connector/nextcloud-32)
  --port N           NEXTCLOUD_PORT       port on 127.0.0.1 (default: the port of the existing
                                          install, else 8932)
  --archive FILE     NEXTCLOUD_ARCHIVE    nextcloud-$NC_VERSION.tar.xz (default
                                          <repo>/../shared/nextcloud-server/nextcloud-$NC_VERSION.tar.xz)
                     NEXTCLOUD_UP_TIMEOUT seconds allowed for \`up\`, apt-get excluded (default 120)
  -h, --help         This text.

Env printed by up and env:
  NEXTCLOUD_TEST_URL             http://127.0.0.1:PORT
  NEXTCLOUD_TEST_USER            alice      NEXTCLOUD_TEST_USER2           bob
  NEXTCLOUD_TEST_APP_PASSWORD    alice's    NEXTCLOUD_TEST_APP_PASSWORD2   bob's app password
  NEXTCLOUD_TEST_PASSWORD        alice's    NEXTCLOUD_TEST_PASSWORD2       bob's login password
  NEXTCLOUD_TEST_ADMIN           admin      NEXTCLOUD_TEST_ADMIN_PASSWORD  its login password
  NEXTCLOUD_TEST_OCC             STATE/occ, runs occ with the right PHP flags, e.g.
                                 "\$NEXTCLOUD_TEST_OCC" security:bruteforce:reset 127.0.0.1

Example:
  eval "\$(tests/nextcloud/server.sh up)"
  curl -u "\$NEXTCLOUD_TEST_USER:\$NEXTCLOUD_TEST_APP_PASSWORD" -X PROPFIND -H 'Depth: 1' \\
      "\$NEXTCLOUD_TEST_URL/remote.php/dav/files/\$NEXTCLOUD_TEST_USER/"
  tests/nextcloud/server.sh down
EOF
}

# ---------------------------------------------------------------- output and time

T0=${EPOCHREALTIME//[!0-9]/}
T_STEP=$T0

# seconds with one decimal, from microseconds
secs() { printf '%d.%d' $(($1 / 1000000)) $(($1 % 1000000 / 100000)); }

# One line per step: what it did, how long it took, time since the command started.
say() {
	local now=${EPOCHREALTIME//[!0-9]/}
	printf 'nextcloud-server: %s (%ss; %ss in all)\n' "$*" "$(secs $((now - T_STEP)))" "$(secs $((now - T0)))" >&2
	T_STEP=$now
}

die() {
	printf 'nextcloud-server: error: %s\n' "$*" >&2
	exit 1
}

# Deadline for `up`, set once the PHP packages are in.
DEADLINE=
start_clock() { DEADLINE=$((${EPOCHREALTIME//[!0-9]/} + ${NEXTCLOUD_UP_TIMEOUT:-120} * 1000000)); }

# Whole seconds left before the deadline, at least 1: the bound for one step.
left() {
	local us=$((DEADLINE - ${EPOCHREALTIME//[!0-9]/}))
	((us > 1000000)) || us=1000000
	echo $(((us + 999999) / 1000000))
}

check_deadline() {
	((${EPOCHREALTIME//[!0-9]/} < DEADLINE)) ||
		die "timed out: up took more than ${NEXTCLOUD_UP_TIMEOUT:-120}s (NEXTCLOUD_UP_TIMEOUT)"
}

# bounded WHAT CMD...: run CMD with the time left, its output appended to STATE/setup.log.
bounded() {
	local what=$1 rc=0
	shift
	check_deadline
	timeout -k 5 "$(left)" "$@" </dev/null >>"$STATE/setup.log" 2>&1 || rc=$?
	if ((rc != 0)); then
		tail -n 20 "$STATE/setup.log" >&2 || true
		((rc == 124 || rc == 137)) && die "timed out: $what (see $STATE/setup.log)"
		die "$what failed with exit code $rc (see $STATE/setup.log)"
	fi
}

# ---------------------------------------------------------------- arguments

STATE=${NEXTCLOUD_STATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nextcloud-connector/nextcloud-32}
PORT=${NEXTCLOUD_PORT:-}
ARCHIVE=${NEXTCLOUD_ARCHIVE:-$SHARED_DIR/nextcloud-server/nextcloud-$NC_VERSION.tar.xz}
COMMAND=
PURGE=false

while (($# > 0)); do
	case $1 in
	-h | --help) usage; exit 0 ;;
	--state) (($# >= 2)) || die "--state needs a directory"; STATE=$2; shift ;;
	--state=*) STATE=${1#*=} ;;
	--port) (($# >= 2)) || die "--port needs a number"; PORT=$2; shift ;;
	--port=*) PORT=${1#*=} ;;
	--archive) (($# >= 2)) || die "--archive needs a file"; ARCHIVE=$2; shift ;;
	--archive=*) ARCHIVE=${1#*=} ;;
	--purge) PURGE=true ;;
	-*) die "unknown option $1 (see --help)" ;;
	*)
		[[ -z $COMMAND ]] || die "one command at a time, got $COMMAND and $1 (see --help)"
		COMMAND=$1
		;;
	esac
	shift
done
[[ -n $COMMAND ]] || { usage >&2; exit 2; }
[[ -z $PORT || $PORT =~ ^[0-9]+$ && PORT -ge 1 && PORT -le 65535 ]] || die "bad port: $PORT (NEXTCLOUD_PORT / --port)"
[[ -n $STATE && $STATE != / ]] || die "bad state directory: '$STATE' (NEXTCLOUD_STATE_DIR / --state)"
# An absolute path: it goes into the server's command line, the occ wrapper and the env.
[[ $STATE == /* ]] || STATE=$PWD/$STATE
STATE=${STATE%/}

NC_DIR=$STATE/nextcloud
DATA_DIR=$STATE/data
ROUTER=$STATE/router.php
OCC=$STATE/occ
ENV_FILE=$STATE/env
CREDENTIALS=$STATE/credentials
INSTALLED=$STATE/installed
PID_FILE=$STATE/server.pid
PORT_FILE=$STATE/server.port
SERVER_LOG=$STATE/server.log

# ---------------------------------------------------------------- the server's processes

# Prints the process group ids of PHP servers started from this state directory (recognised by
# their router path on the command line), one a line. Zombies do not count.
server_groups() {
	local dir stat rest state pgrp arg ours groups=()
	local -a args
	for dir in /proc/[0-9]*; do
		{ mapfile -d '' -t args <"$dir/cmdline"; } 2>/dev/null || continue
		ours=false
		for arg in "${args[@]}"; do
			[[ $arg == "$ROUTER" ]] && ours=true
		done
		$ours || continue
		{ read -r stat <"$dir/stat"; } 2>/dev/null || continue
		rest=${stat##*) }
		read -r state _ pgrp _ <<<"$rest"
		[[ $state != Z ]] || continue
		[[ " ${groups[*]} " == *" $pgrp "* ]] || groups+=("$pgrp")
	done
	((${#groups[@]} == 0)) || printf '%s\n' "${groups[@]}"
}

# Is any live (non-zombie) process left in process group $1?
group_alive() {
	local dir stat rest state pgrp
	for dir in /proc/[0-9]*; do
		{ read -r stat <"$dir/stat"; } 2>/dev/null || continue
		rest=${stat##*) }
		read -r state _ pgrp _ <<<"$rest"
		[[ $pgrp == "$1" && $state != Z ]] && return 0
	done
	return 1
}

# Stops every server of this state directory: TERM to the process group, KILL after 10 s.
stop_server() {
	local pgid waited stopped=()
	for pgid in $(server_groups); do
		kill -TERM -- "-$pgid" 2>/dev/null || true
		for ((waited = 0; waited < 100; waited++)); do
			group_alive "$pgid" || break
			sleep 0.1
		done
		if group_alive "$pgid"; then
			kill -KILL -- "-$pgid" 2>/dev/null || true
			for ((waited = 0; waited < 50; waited++)); do
				group_alive "$pgid" || break
				sleep 0.1
			done
			group_alive "$pgid" && die "process group $pgid survives SIGKILL"
			stopped+=("$pgid (KILL)")
		else
			stopped+=("$pgid")
		fi
	done
	rm -f "$PID_FILE" "$PORT_FILE"
	if ((${#stopped[@]} > 0)); then
		say "stopped the server, process group ${stopped[*]}"
	fi
}

port_open() { (: >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# `status.php` of the server on port $1 says installed: true?
answers() {
	local body
	body=$(curl -sS --max-time "${2:-10}" "http://127.0.0.1:$1/status.php" 2>/dev/null) || return 1
	[[ $body == *'"installed":true'* ]]
}

running_port() { [[ -s $PORT_FILE ]] && cat "$PORT_FILE"; }

# ---------------------------------------------------------------- PHP

php_missing_modules() {
	local modules module missing=()
	if ! command -v "$PHP" >/dev/null; then
		echo "$PHP"
		return
	fi
	modules=$("$PHP" -m)
	for module in "${PHP_MODULES[@]}"; do
		grep -qixF -- "$module" <<<"$modules" || missing+=("$module")
	done
	echo "${missing[*]}"
}

ensure_php() {
	local missing was log
	missing=$(php_missing_modules)
	[[ -n $missing ]] || return 0
	was=$missing
	((EUID == 0)) || die "PHP is missing ($missing); as root run: apt-get install ${PHP_PACKAGES[*]}"
	log=$STATE/apt.log
	export DEBIAN_FRONTEND=noninteractive
	local install=(apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "${PHP_PACKAGES[@]}")
	if ! timeout -k 5 600 "${install[@]}" </dev/null >>"$log" 2>&1; then
		say "apt-get install failed without an update, running apt-get update"
		timeout -k 5 300 apt-get update -q </dev/null >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get update failed (see $log)"; }
		timeout -k 5 600 "${install[@]}" </dev/null >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "apt-get install failed (see $log)"; }
	fi
	missing=$(php_missing_modules)
	[[ -z $missing ]] || die "still missing after apt-get install: $missing"
	say "installed PHP 8.2 packages by apt-get (missing were: $was)"
}

PHP_FLAGS=()
php_flags() {
	PHP_FLAGS=(-d memory_limit=1G)
	if "$PHP" -m | grep -qix apcu; then
		PHP_FLAGS+=(-d apc.enable_cli=1)
	fi
}

# ---------------------------------------------------------------- install

random_password() { printf '%s-%s' "$1" "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"; }

write_occ_wrapper() {
	local php_path
	php_path=$(command -v "$PHP")
	{
		echo '#!/bin/sh'
		echo '# occ of the test Nextcloud, written by tests/nextcloud/server.sh'
		printf 'exec %q' "$php_path"
		printf ' %q' "${PHP_FLAGS[@]}" "$NC_DIR/occ"
		printf ' "$@"\n'
	} >"$OCC.tmp"
	chmod 755 "$OCC.tmp"
	mv "$OCC.tmp" "$OCC"
}

# config:import of the settings that depend on the port (and, with $2 = all, all the others).
import_config() {
	local port=$1 json=$STATE/config.json memcache=''
	if [[ ${2:-} == all ]]; then
		if "$PHP" -m | grep -qix apcu; then
			memcache='"memcache.local": "\\OC\\Memcache\\APCu",'
		fi
		cat >"$json" <<EOF
{
  "system": {
    "trusted_domains": ["127.0.0.1:$port", "localhost:$port"],
    "overwrite.cli.url": "http://127.0.0.1:$port",
    "skeletondirectory": "",
    "templatedirectory": "",
    "has_internet_connection": false,
    "appstoreenabled": false,
    "updatechecker": false,
    "ratelimit.protection.enabled": false,
    $memcache
    "mail_smtpmode": "null"
  },
  "apps": {
    "core": {
      "backgroundjobs_mode": "cron",
      "newUser.sendEmail": "no"
    }
  }
}
EOF
	else
		cat >"$json" <<EOF
{
  "system": {
    "trusted_domains": ["127.0.0.1:$port", "localhost:$port"],
    "overwrite.cli.url": "http://127.0.0.1:$port"
  }
}
EOF
	fi
	bounded "occ config:import" "$OCC" config:import "$json"
}

# add_user NAME EMAIL PASSWORD: creates the user, prints an app password made by occ.
add_user() {
	local name=$1 email=$2 password=$3 out token
	OC_PASS=$password bounded "occ user:add $name" "$OCC" user:add --password-from-env \
		--display-name "${name^}" --email "$email" "$name"
	check_deadline
	out=$(OC_PASS=$password timeout -k 5 "$(left)" "$OCC" user:auth-tokens:add --password-from-env \
		"$name" </dev/null 2>>"$STATE/setup.log") ||
		die "occ user:auth-tokens:add $name failed: $out (see $STATE/setup.log)"
	# It prints "app password:" and then the token (72 letters and digits) on a line of its own.
	token=$(tr -d '\r' <<<"$out" | grep -E '^[A-Za-z0-9][A-Za-z0-9-]{31,}$' | tail -n 1) ||
		die "no app password in the output of occ user:auth-tokens:add $name: $out"
	echo "$token"
}

write_env() {
	local port=$1
	# shellcheck source=/dev/null
	. "$CREDENTIALS"
	{
		printf 'export %s=%q\n' \
			NEXTCLOUD_TEST_URL "http://127.0.0.1:$port" \
			NEXTCLOUD_TEST_USER alice \
			NEXTCLOUD_TEST_PASSWORD "$ALICE_PASSWORD" \
			NEXTCLOUD_TEST_APP_PASSWORD "$ALICE_APP_PASSWORD" \
			NEXTCLOUD_TEST_USER2 bob \
			NEXTCLOUD_TEST_PASSWORD2 "$BOB_PASSWORD" \
			NEXTCLOUD_TEST_APP_PASSWORD2 "$BOB_APP_PASSWORD" \
			NEXTCLOUD_TEST_ADMIN admin \
			NEXTCLOUD_TEST_ADMIN_PASSWORD "$ADMIN_PASSWORD" \
			NEXTCLOUD_TEST_OCC "$OCC"
	} >"$ENV_FILE.tmp"
	chmod 600 "$ENV_FILE.tmp"
	mv "$ENV_FILE.tmp" "$ENV_FILE"
	echo "$port" >"$STATE/install.port"
}

need_archive() {
	[[ -f $ARCHIVE ]] || {
		printf 'nextcloud-server: error: no Nextcloud archive at %s (set NEXTCLOUD_ARCHIVE)\n' "$ARCHIVE" >&2
		exit 2
	}
}

install_nextcloud() {
	local port=$1 admin alice bob alice_token bob_token sum
	need_archive
	if [[ -e $NC_DIR || -e $DATA_DIR || -e $STATE/unpack ]]; then
		rm -rf "$NC_DIR" "$DATA_DIR" "$STATE/unpack"
		say "removed the unfinished install left in $STATE"
	fi
	rm -f "$ENV_FILE" "$CREDENTIALS" "$STATE/install.port" "$STATE/setup.log" "$STATE/config.json"

	sum=$(timeout -k 5 "$(left)" sha256sum "$ARCHIVE") || die "sha256sum $ARCHIVE failed"
	[[ ${sum%% *} == "$NC_ARCHIVE_SHA256" ]] ||
		die "$ARCHIVE has sha256 ${sum%% *}, expected $NC_ARCHIVE_SHA256 (NEXTCLOUD_ARCHIVE)"
	say "checked the sha256 of $ARCHIVE"

	mkdir -p "$STATE/unpack"
	bounded "unpacking $ARCHIVE" tar --no-same-owner -I 'xz -T2' -xf "$ARCHIVE" -C "$STATE/unpack"
	[[ -f $STATE/unpack/nextcloud/occ ]] || die "$ARCHIVE has no nextcloud/occ"
	mv "$STATE/unpack/nextcloud" "$NC_DIR"
	rmdir "$STATE/unpack"
	say "unpacked Nextcloud $NC_VERSION into $NC_DIR"

	write_occ_wrapper
	admin=$(random_password admin)
	bounded "occ maintenance:install" "$OCC" maintenance:install --no-interaction \
		--database sqlite --database-name nextcloud --admin-user admin --admin-pass "$admin" \
		--data-dir "$DATA_DIR"
	say "installed with SQLite, data in $DATA_DIR"

	import_config "$port" all
	say "configured 127.0.0.1:$port and localhost:$port, no skeleton, no internet, app store, mail or background jobs"

	alice=$(random_password alice)
	bob=$(random_password bob)
	alice_token=$(add_user alice alice@example.test "$alice")
	bob_token=$(add_user bob bob@example.test "$bob")
	printf '%s=%q\n' ADMIN_PASSWORD "$admin" ALICE_PASSWORD "$alice" ALICE_APP_PASSWORD "$alice_token" \
		BOB_PASSWORD "$bob" BOB_APP_PASSWORD "$bob_token" >"$CREDENTIALS"
	chmod 600 "$CREDENTIALS"
	write_env "$port"
	touch "$INSTALLED"
	say "created users alice and bob (alice@example.test, bob@example.test) with an app password each"
}

# ---------------------------------------------------------------- start

start_server() {
	local port=$1 pgid=
	cp "$SCRIPT_DIR/router.php" "$ROUTER"
	: >>"$SERVER_LOG"
	rm -f "$PID_FILE"
	# setsid: a session and process group of its own (the master and its 4 workers), so that
	# `down` can signal all of them. The shell writes its pid, the group id, then becomes PHP.
	(
		cd "$NC_DIR"
		# shellcheck disable=SC2016 # $$ and $1 are the inner shell's
		PHP_CLI_SERVER_WORKERS=4 exec setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' bash "$PID_FILE" \
			"$PHP" "${PHP_FLAGS[@]}" -d post_max_size=1G -d upload_max_filesize=1G \
			-S "127.0.0.1:$port" -t "$NC_DIR" "$ROUTER"
	) </dev/null >>"$SERVER_LOG" 2>&1 &
	# Wait for the port, watching that PHP did not die (a port taken meanwhile, a bad flag).
	while :; do
		[[ -z $pgid && -s $PID_FILE ]] && pgid=$(<"$PID_FILE")
		port_open "$port" && [[ -n $pgid ]] && break
		if [[ -n $pgid ]] && ! group_alive "$pgid"; then
			tail -n 20 "$SERVER_LOG" >&2
			die "the PHP server exited at start (see $SERVER_LOG)"
		fi
		check_deadline
		sleep 0.1
	done
	echo "$port" >"$PORT_FILE"
	say "started PHP's server on 127.0.0.1:$port, process group $pgid, log $SERVER_LOG"
}

smoke_check() {
	local port=$1 code
	# shellcheck source=/dev/null
	. "$CREDENTIALS"
	answers "$port" "$(left)" || die "status.php on port $port does not say installed: true (see $SERVER_LOG)"
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time "$(left)" -u "alice:$ALICE_APP_PASSWORD" \
		-X PROPFIND -H 'Depth: 0' "http://127.0.0.1:$port/remote.php/dav/files/alice/") || true
	[[ $code == 207 ]] || die "PROPFIND /remote.php/dav/files/alice/ as alice answered ${code:-nothing}, not 207 (see $SERVER_LOG)"
	say "smoke-checked: status.php installed, PROPFIND as alice 207"
}

# ---------------------------------------------------------------- commands

port_taken() {
	die "port $PORT on 127.0.0.1 is taken by something that is not this state dir's server (NEXTCLOUD_PORT / --port)"
}

cmd_up() {
	local running installed_port
	mkdir -p "$STATE"
	[[ -e $STATE/$STATE_MARK ]] || {
		[[ -z $(ls -A "$STATE") ]] || die "$STATE is not empty and was not made by this script (NEXTCLOUD_STATE_DIR)"
		touch "$STATE/$STATE_MARK"
	}
	chmod 700 "$STATE"
	installed_port=
	if [[ -f $INSTALLED && -s $STATE/install.port ]]; then
		installed_port=$(<"$STATE/install.port")
	fi
	PORT=${PORT:-${installed_port:-8932}}

	running=$(running_port || true)
	if [[ -n $(server_groups) ]]; then
		if [[ $running == "$PORT" && -f $INSTALLED ]] && answers "$PORT"; then
			say "already running on http://127.0.0.1:$PORT (state $STATE)"
			cat "$ENV_FILE"
			return 0
		fi
		[[ $running != "$PORT" ]] && port_open "$PORT" && port_taken
		stop_server
	fi
	rm -f "$PID_FILE" "$PORT_FILE"
	port_open "$PORT" && port_taken

	[[ -f $INSTALLED ]] || need_archive
	ensure_php
	php_flags
	start_clock
	if [[ ! -f $INSTALLED ]]; then
		install_nextcloud "$PORT"
	else
		write_occ_wrapper
		if [[ $installed_port != "$PORT" ]]; then
			import_config "$PORT"
			write_env "$PORT"
			say "moved the install from port $installed_port to $PORT"
		fi
	fi
	start_server "$PORT"
	smoke_check "$PORT"
	cat "$ENV_FILE"
}

cmd_env() {
	local port
	port=$(running_port || true)
	[[ -n $(server_groups) && -n $port && -f $ENV_FILE ]] ||
		die "no server runs from $STATE (start one with: tests/nextcloud/server.sh up)"
	cat "$ENV_FILE"
}

cmd_status() {
	local groups port
	groups=$(server_groups)
	port=$(running_port || true)
	if [[ -z $groups ]]; then
		if [[ -f $INSTALLED ]]; then
			echo "not running (installed in $STATE)"
		else
			echo "not running (nothing installed in $STATE)"
		fi
		return 1
	fi
	if [[ -n $port ]] && answers "$port"; then
		echo "running: http://127.0.0.1:$port, process group $(echo "$groups" | tr '\n' ' ')(state $STATE, log $SERVER_LOG)"
		return 0
	fi
	echo "process group $(echo "$groups" | tr '\n' ' ')runs from $STATE but http://127.0.0.1:${port:-?}/status.php does not answer installed: true"
	return 1
}

cmd_down() {
	stop_server
	if $PURGE; then
		if [[ -d $STATE ]]; then
			[[ -e $STATE/$STATE_MARK ]] || die "$STATE was not made by this script; not deleting it"
			rm -rf "$STATE"
			say "deleted $STATE"
		fi
	fi
	return 0
}

cmd_reset_bruteforce() {
	[[ -f $INSTALLED && -x $OCC ]] || die "nothing installed in $STATE (run: tests/nextcloud/server.sh up)"
	timeout -k 5 60 "$OCC" security:bruteforce:reset 127.0.0.1 </dev/null >&2
	say "reset brute-force protection for 127.0.0.1"
}

case $COMMAND in
up) cmd_up ;;
env) cmd_env ;;
status) cmd_status ;;
down) cmd_down ;;
purge) PURGE=true; cmd_down ;;
reset-bruteforce) cmd_reset_bruteforce ;;
help) usage ;;
*) die "unknown command $COMMAND (see --help)" ;;
esac
