#!/usr/bin/env bash
# The project's test command: lint, build the VM rig (cached), run every test
# (codec units, the vhost-user frontend harness, the hostile-client suite,
# the VM tests), then the fuzz targets' smoke runs.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
cargo --version

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "test peers (diod's 9P clients)"
if ! command -v diodls >/dev/null && ! [ -x /usr/sbin/diodls ]; then
	apt-get install -y diod >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y diod >/dev/null; }
fi
echo "diod: $(dpkg-query -W -f '${Version}' diod)"

step "systemd-analyze and systemd-socket-activate (systemd: tests/systemd_units.rs)"
if ! [ -x /usr/bin/systemd-analyze ] || ! [ -x /usr/bin/systemd-socket-activate ]; then
	apt-get install -y systemd >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y systemd >/dev/null; }
fi
echo "systemd: $(dpkg-query -W -f '${Version}' systemd)"

step "libvirtd, virsh, virt-xml-validate (libvirt 9.0 and xmllint: tests/libvirt.rs)"
if ! [ -x /usr/sbin/libvirtd ] || ! [ -x /usr/bin/virsh ] || ! [ -x /usr/bin/xmllint ] ||
	! [ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ]; then
	pkgs="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libxml2-utils"
	apt-get install -y --no-install-recommends $pkgs >/dev/null 2>&1 ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends $pkgs >/dev/null; }
fi
echo "libvirt: $(dpkg-query -W -f '${Version}' libvirt-daemon)"

step "newuidmap/newgidmap (uidmap: subordinate ids for the unprivileged sandbox)"
if ! [ -x /usr/bin/newuidmap ] || ! [ -x /usr/bin/newgidmap ]; then
	apt-get install -y uidmap >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y uidmap >/dev/null; }
fi
echo "uidmap: $(dpkg-query -W -f '${Version}' uidmap)"

step "test peers (python-9p, a 9P2000 client, in the rig cache)"
py9p_dir="${VU9P_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vhost-user-9p}/python-9p"
py9p_version() { PYTHONPATH="$py9p_dir" python3 -c 'import importlib.metadata as m; print(m.version("python-9p"))' 2>/dev/null; }
if [ "$(py9p_version)" != 0.1.0 ]; then
	python3 -m pip install --quiet --disable-pip-version-check --upgrade --target "$py9p_dir" python-9p==0.1.0
fi
echo "python-9p: $(py9p_version) in $py9p_dir"

step "VM rig (vm-images/build.sh)"
bash vm-images/build.sh

step "cargo test"
cargo test --all-targets

step "fuzz smoke (ci/fuzz.sh: replay the corpora, then 30 s per target)"
bash ci/fuzz.sh
