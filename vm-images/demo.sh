#!/usr/bin/env bash
# First run for a new user: build the daemon and the VM rig, then share a directory
# with a throw-away guest and run a command (or a shell) in it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"

usage() {
	cat <<'EOF'
usage: vm-images/demo.sh [DIR] [--shell] [--server vhost|qemu] [-- COMMAND...]

Shares DIR (default: the current directory) with a small Linux guest over
virtio-9p, served by the vhost-user-9p daemon, and runs COMMAND in the guest.

  DIR              host directory to share; the guest mounts it on /mnt
  --shell          an interactive shell in the guest instead of COMMAND
                   ('exit' or 'poweroff' ends the VM; Ctrl-A x kills it)
  --server NAME    vhost (default): this project's daemon;
                   qemu: QEMU's built-in 9p server, for comparison
  -- COMMAND...    run by the guest's busybox sh in /mnt (words are joined
                   with spaces, as ssh does); default: ls -l /mnt && df -h /mnt
  -h, --help       this help

Steps: cargo build --release (target/release/vhost-user-9p), vm-images/build.sh
(downloads QEMU, a guest kernel and busybox once into
${VU9P_CACHE:-${XDG_CACHE_HOME:-~/.cache}/vhost-user-9p}), then vm-images/runvm.py.
The guest runs under TCG emulation: booting takes a few seconds. Nothing is
left behind: the VM and the daemon are stopped, temporary files removed, and
nothing is mounted on the host.  The exit status is COMMAND's.

Examples:
  vm-images/demo.sh
  vm-images/demo.sh /srv/data -- 'find . -type f | wc -l'
  vm-images/demo.sh ~/src --shell
EOF
}

die() { echo "demo: error: $*" >&2; exit 2; }

DIR=""
SHELL_MODE=0
SERVER=vhost
CMD=()
while (($#)); do
	case "$1" in
	-h | --help) usage; exit 0 ;;
	--shell) SHELL_MODE=1 ;;
	--server) (($# >= 2)) || die "--server needs a value"; SERVER=$2; shift ;;
	--server=*) SERVER=${1#--server=} ;;
	--) shift; CMD=("$@"); break ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) [[ -z $DIR ]] || die "only one DIR can be shared (see --help)"; DIR=$1 ;;
	esac
	shift
done
DIR=${DIR:-.}
[[ -d $DIR ]] || die "$DIR is not a directory"
[[ $SERVER == vhost || $SERVER == qemu ]] || die "--server must be vhost or qemu"
((SHELL_MODE && ${#CMD[@]})) && die "--shell and a COMMAND do not go together"

args=(--shared-dir "$DIR" --server "$SERVER")
if [[ $SERVER == vhost ]]; then
	command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) or use --server qemu"
	echo "demo: building the daemon (cargo build --release)..." >&2
	(cd "$REPO" && cargo build --release)
	args+=(--daemon "$REPO/target/release/vhost-user-9p")
fi
"$HERE/build.sh"

if ((SHELL_MODE)); then
	args+=(--interactive)
elif ((${#CMD[@]})); then
	args+=(--command "cd /mnt && ${CMD[*]}")
else
	args+=(--command "ls -l /mnt && df -h /mnt")
fi
echo "demo: sharing $(cd "$DIR" && pwd) as /mnt in the guest ($SERVER server)..." >&2
exec python3 "$HERE/runvm.py" "${args[@]}"
