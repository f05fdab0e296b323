#!/usr/bin/env bash
# First run for a new user: build the daemon and the VM rig, then share a directory
# with a throw-away guest and run a command (or a shell) in it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"

usage() {
	cat <<'EOF'
usage: vm-images/demo.sh [DIR | --store DIR] [--shell] [--server vhost|qemu] [-- COMMAND...]

Shares DIR (default: the current directory) with a small Linux guest over
virtio-9p, served by the vhost-user-9p daemon, and runs COMMAND in the guest.

  DIR              host directory to share; the guest mounts it on /mnt
  --store DIR      share DIR, a Nix-style store (benches/vm/store.py makes one),
                   and set it up in the guest as a NixOS build VM does, before
                   COMMAND or the shell: DIR (on /mnt) bind-mounted read-only on
                   /nix/.ro-store, an overlay with a tmpfs upper on /nix/store,
                   the store's gcc (if it has one) first on PATH; default
                   COMMAND: ls /nix/store && grep ' /nix' /proc/mounts.
                   With --shell, DIR needs the .profile store.py writes
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
  vm-images/demo.sh --store "$(benches/vm/store.py)" -- 'gcc --version'
EOF
}

die() { echo "demo: error: $*" >&2; exit 2; }

DIR=""
STORE=0
SHELL_MODE=0
SERVER=vhost
CMD=()
while (($#)); do
	case "$1" in
	-h | --help) usage; exit 0 ;;
	--shell) SHELL_MODE=1 ;;
	--server) (($# >= 2)) || die "--server needs a value"; SERVER=$2; shift ;;
	--server=*) SERVER=${1#--server=} ;;
	--store) (($# >= 2)) || die "--store needs a directory"; [[ -z $DIR ]] || die "only one DIR can be shared (see --help)"
		DIR=$2 STORE=1; shift ;;
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
# (runvm.py runs no script before an interactive shell: the store's .profile sets it up,
# read by the guest's login shell, whose HOME is the store then)
((STORE && SHELL_MODE)) && [[ ! -f $DIR/.profile ]] && die "--shell needs $DIR/.profile (a store made by benches/vm/store.py)"

args=(--shared-dir "$DIR" --server "$SERVER")
if [[ $SERVER == vhost ]]; then
	command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) or use --server qemu"
	echo "demo: building the daemon (cargo build --release)..." >&2
	(cd "$REPO" && cargo build --release)
	args+=(--daemon "$REPO/target/release/vhost-user-9p")
fi
"$HERE/build.sh"

# --store: the guest's script sets the store up first, with benches/vm/guest-store.sh.
setup="" what=""
if ((STORE)); then
	what=", its store on /nix/store"
	setup="$(cat "$REPO/benches/vm/guest-store.sh")
store_setup /mnt || { echo 'demo: setting up /nix/store failed' >&2; exit 125; }
[ -n \"\${STORE_GCC:-}\" ] && PATH=\${STORE_GCC%/*}:\$PATH
"
	((${#CMD[@]})) || CMD=("ls /nix/store && grep ' /nix' /proc/mounts")
fi
if ((SHELL_MODE)); then
	args+=(--interactive)
	((STORE)) && args+=(--env HOME=/mnt)
elif ((${#CMD[@]})); then
	args+=(--command "${setup}cd /mnt && ${CMD[*]}")
else
	args+=(--command "ls -l /mnt && df -h /mnt")
fi
echo "demo: sharing $(cd "$DIR" && pwd) as /mnt in the guest ($SERVER server)$what..." >&2
exec python3 "$HERE/runvm.py" "${args[@]}"
