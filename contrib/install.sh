#!/bin/sh
# Install vhost-user-9p where QEMU's backend conventions, man, the shells and
# systemd look for it: the step after `cargo install --path .`.
#
# Usage: contrib/install.sh [BINARY]
#
#   BINARY   the daemon to install [default: the one `cargo install` put in
#            ${CARGO_INSTALL_ROOT:-${CARGO_HOME:-~/.cargo}}/bin, else
#            ${CARGO_TARGET_DIR:-target}/release/vhost-user-9p]. The script
#            never builds: run it with sudo after building as yourself.
#   PREFIX   where it goes [default: /usr/local]; letters, digits and
#            / . _ + @ - only, as it is written into the JSON and the units
#   DESTDIR  staging root prepended to every path written (for packages);
#            the paths written into files are without it
#
# Installs, under DESTDIR/PREFIX:
#   libexec/vhost-user-9p                                  the daemon (0755)
#   share/qemu/vhost-user/50-vhost-user-9p.json            its "binary" set
#                                                          to PREFIX/libexec/vhost-user-9p
#   share/man/man1/vhost-user-9p.1
#   share/bash-completion/completions/vhost-user-9p
#   share/zsh/site-functions/_vhost-user-9p
#   share/fish/vendor_completions.d/vhost-user-9p.fish
#   lib/systemd/system/  contrib/systemd/*.service and *.socket, their
#                        Exec*= lines pointed at PREFIX/libexec/vhost-user-9p
set -eu

NAME=vhost-user-9p
top=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}

die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

case $PREFIX in
/*) ;;
*) die "PREFIX must be an absolute path, got '$PREFIX'" ;;
esac
case $PREFIX in
*[!A-Za-z0-9/._+@-]*) die "PREFIX '$PREFIX': only letters, digits and / . _ + @ - are accepted (it is written into the JSON and the systemd units)" ;;
esac
# Without a trailing slash, so that the paths written are clean.
while [ "$PREFIX" != / ] && [ "${PREFIX%/}" != "$PREFIX" ]; do
	PREFIX=${PREFIX%/}
done
[ "$PREFIX" = / ] && PREFIX=

if [ $# -gt 1 ]; then
	die "usage: contrib/install.sh [BINARY] (PREFIX and DESTDIR from the environment)"
fi
if [ $# -eq 1 ]; then
	binary=$1
	[ -f "$binary" ] && [ -x "$binary" ] || die "$binary: not an executable file"
else
	cargo_bin=${CARGO_INSTALL_ROOT:-${CARGO_HOME:-${HOME:-/nonexistent}/.cargo}}/bin/$NAME
	release=${CARGO_TARGET_DIR:-$top/target}/release/$NAME
	binary=
	for candidate in "$cargo_bin" "$release"; do
		if [ -f "$candidate" ] && [ -x "$candidate" ]; then
			binary=$candidate
			break
		fi
	done
	[ -n "$binary" ] || die "no $NAME binary at $cargo_bin or $release: run \`cargo install --path .\` (or \`cargo build --release\`) first, or give the binary's path as the argument"
fi

installed=$PREFIX/libexec/$NAME

# The checked-in files this script installs (generated ones: see
# tests/generated_docs.rs).
json=$top/contrib/50-$NAME.json
man=$top/doc/$NAME.1
completions=$top/contrib/completions
for f in "$json" "$man" "$completions/$NAME.bash" "$completions/_$NAME" "$completions/$NAME.fish"; do
	[ -f "$f" ] || die "$f is missing from the source tree"
done

put() { # put MODE SOURCE DEST: install SOURCE as DESTDIR/DEST
	install -d -m 0755 "$DESTDIR$(dirname "$3")"
	install -m "$1" "$2" "$DESTDIR$3"
	printf '%s\n' "$DESTDIR$3"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

put 0755 "$binary" "$installed"

grep -q '"binary"' "$json" || die "$json has no \"binary\" field"
sed -E "s#(\"binary\"[[:space:]]*:[[:space:]]*)\"[^\"]*\"#\\1\"$installed\"#" "$json" >"$tmp/json"
put 0644 "$tmp/json" "$PREFIX/share/qemu/vhost-user/50-$NAME.json"

put 0644 "$man" "$PREFIX/share/man/man1/$NAME.1"
put 0644 "$completions/$NAME.bash" "$PREFIX/share/bash-completion/completions/$NAME"
put 0644 "$completions/_$NAME" "$PREFIX/share/zsh/site-functions/_$NAME"
put 0644 "$completions/$NAME.fish" "$PREFIX/share/fish/vendor_completions.d/$NAME.fish"

# systemd units, if the tree has them: a command naming the daemon (by any
# path, or none) after Exec*=, and its prefixes (- @ : + !), runs the one
# installed.
for unit in "$top"/contrib/systemd/*.service "$top"/contrib/systemd/*.socket; do
	[ -f "$unit" ] || continue
	sed -E "s#^(Exec[A-Za-z]*=[-@:+!]*)([^[:space:]]*/)?$NAME([[:space:]]|\$)#\\1$installed\\3#" "$unit" >"$tmp/unit"
	put 0644 "$tmp/unit" "$PREFIX/lib/systemd/system/$(basename "$unit")"
done
