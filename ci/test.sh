#!/usr/bin/env bash
# The project's test command: lint, build the VM rig (cached), run every test
# (codec units, the vhost-user frontend harness, the VM end-to-end test).
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

step "VM rig (vm-images/build.sh)"
bash vm-images/build.sh

step "cargo test"
cargo test --all-targets
