#!/usr/bin/env bash
# Build (or refresh) the VM test rig for vhost-user-9p, cached outside the repo:
#   $CACHE/bin/qemu-system-x86_64   QEMU 11.x from trixie-backports (private prefix)
#   $CACHE/bin/virtiofsd            virtiofsd from trixie (for comparisons)
#   $CACHE/guest/vmlinux            bookworm 6.1 amd64 kernel, uncompressed ELF (PVH boot)
#   $CACHE/guest/initrd.gz          busybox-static + 9p/virtio modules + guest tools (including
#                                   tests/posix-suite as posix-suite) + /init
#   $CACHE/guest-6.12/{vmlinux,initrd.gz}  optional (--kernel 6.12): trixie 6.12 amd64 kernel and
#                                   its own initramfs (same /init, busybox, tools and modules)
# CACHE = ${VU9P_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vhost-user-9p}
#
# Each step is keyed by a hash of its own code and inputs (stamps in $CACHE/stamps),
# so a warm run does no network access and editing the init script or a guest tool
# rebuilds only the initramfs.  Nothing outside $CACHE is touched except host packages
# the build needs (gcc, libc6-dev, xz-utils), installed with apt-get when missing.
set -euo pipefail

usage() {
	cat <<EOF
usage: $0 [--refresh] [--kernel 6.12] [--print-cache-dir] [-h|--help]

Builds the cached QEMU, virtiofsd, guest kernel and initramfs used by runvm.py.
  --refresh          re-read the Debian archive (apt-get update in the private
                     apt configs) and pick up newer QEMU/kernel/busybox packages
  --kernel 6.12      also build the optional trixie 6.12 guest (\$CACHE/guest-6.12;
                     runvm.py --kernel 6.12); the bookworm 6.1 guest is always built
  --print-cache-dir  print the cache directory and exit
Environment: VU9P_CACHE (cache directory), XDG_CACHE_HOME.
EOF
}

REFRESH=0
KERNEL_612=0
while (($#)); do
	arg=$1; shift
	case "$arg" in
	--refresh) REFRESH=1 ;;
	--kernel | --kernel=*)
		if [[ $arg == --kernel ]]; then (($#)) || { usage >&2; exit 2; }; arg=$1; shift; else arg=${arg#--kernel=}; fi
		case "$arg" in
		6.1) ;;
		6.12) KERNEL_612=1 ;;
		*) echo "$0: unknown guest kernel '$arg' (6.1 or 6.12)" >&2; exit 2 ;;
		esac
		;;
	--print-cache-dir) echo "${VU9P_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vhost-user-9p}"; exit 0 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${VU9P_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vhost-user-9p}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
STAMPS="$CACHE/stamps"
exec 9>"$CACHE/.lock" # one build at a time per cache
flock -n 9 || { echo "vm-images: waiting for another build.sh on $CACHE..." >&2; flock 9; }
mkdir -p "$STAMPS" "$CACHE/bin" "$CACHE/guest"

# Guest kernel modules wanted, in load order; dependencies are added from each .ko's modinfo.
GUEST_MODULES=(virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio virtio_pci
	9pnet 9pnet_virtio netfs fscache 9p virtiofs overlay)

log() { echo "vm-images: $*" >&2; }
die() { echo "vm-images: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------- stamps
# key_of FUNC... [-- EXTRA...]: hash of the named functions' code plus extra strings.
key_of() {
	local fns=() extra=()
	while (($#)); do
		if [[ $1 == -- ]]; then shift; extra=("$@"); break; fi
		fns+=("$1"); shift
	done
	{ declare -f "${fns[@]}"; printf '%s\n' "${extra[@]}"; } | sha256sum | cut -c1-16
}
stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_set() { echo "$2" >"$STAMPS/$1"; }

# ---------------------------------------------------------------- host packages
HOST_APT_UPDATED=0
# need_host CMD_OR_FILE:PACKAGE ...: apt-get install the packages whose command/file is missing.
need_host() {
	local spec what pkg missing=()
	for spec in "$@"; do
		what="${spec%%:*}" pkg="${spec#*:}"
		if [[ $what == /* ]]; then [[ -e $what ]] && continue
		else command -v "$what" >/dev/null 2>&1 && continue; fi
		missing+=("$pkg")
	done
	((${#missing[@]})) || return 0
	[[ $(id -u) == 0 ]] || die "missing host packages: ${missing[*]} (install them as root)"
	log "installing host packages: ${missing[*]}"
	if ((!HOST_APT_UPDATED)) && ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
		apt-get update -qq
		HOST_APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---------------------------------------------------------------- private apt
# The Debian archive address this machine already uses (never hard-coded here).
archive_uri() {
	local files=() f
	[[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
	for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] && files+=("$f")
	done
	((${#files[@]})) || die "no apt sources found in /etc/apt"
	# Prefer an entry for a plain Debian suite (not -security/-updates/-backports).
	awk '
	function consider(uris, suites,   u, s, nu, ns, i, j) {
		nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
		for (i = 1; i <= nu; i++) {
			if (u[i] == "" || u[i] !~ /^(https?|file|ftp):/) continue
			for (j = 1; j <= ns; j++) {
				if (s[j] == "") continue
				if (s[j] ~ /^(bookworm|trixie|forky|sid|stable|testing|unstable|oldstable)$/) { if (best == "") best = u[i] }
				else if (s[j] !~ /security/ && any == "") any = u[i]
			}
		}
	}
	FNR == 1 { flush() }
	function flush() { if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled !~ /^[Nn]o/) consider(uris, suites); types = uris = suites = enabled = "" }
	/^[ \t]*#/ { next }
	FILENAME ~ /\.sources$/ {
		if ($0 ~ /^[ \t]*$/) { flush(); next }
		if (match($0, /^[A-Za-z-]+:/)) {
			key = tolower(substr($0, 1, RLENGTH - 1)); val = substr($0, RLENGTH + 1); gsub(/^[ \t]+|[ \t]+$/, "", val)
			if (key == "types") types = val; else if (key == "uris") uris = val
			else if (key == "suites") suites = val; else if (key == "enabled") enabled = val
		}
		next
	}
	$1 == "deb" {
		line = $0; sub(/^[ \t]*deb[ \t]+/, "", line)
		if (line ~ /^\[/) sub(/^\[[^]]*\][ \t]*/, "", line)
		split(line, w, /[ \t]+/)
		types = "deb"; uris = w[1]; suites = w[2]; flush()
	}
	END { flush(); if (best != "") print best; else if (any != "") print any }
	' "${files[@]}" | sed 's:/*$::'
}

# apt_setup NAME "SUITE ..." : a private apt config in $CACHE/apt/NAME (own sources, lists,
# archives and an empty dpkg status), so the host's apt state is never touched.
apt_setup() {
	local name=$1 suites=$2 root="$CACHE/apt/$1" uri s
	uri="$(archive_uri)"
	[[ -n $uri ]] || die "could not find the Debian archive address in /etc/apt sources"
	mkdir -p "$root"/{etc/apt.conf.d,etc/preferences.d,etc/sources.list.d,etc/trusted.gpg.d,lists/partial,archives/partial,log}
	: >"$root/status.new"
	[[ -f $root/status ]] || mv "$root/status.new" "$root/status"
	rm -f "$root/status.new"
	{
		for s in $suites; do
			echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $s main"
		done
	} >"$root/etc/sources.list.new"
	if ! cmp -s "$root/etc/sources.list.new" "$root/etc/sources.list" 2>/dev/null; then
		mv "$root/etc/sources.list.new" "$root/etc/sources.list"
		rm -f "$root"/lists/*_Packages* # sources changed: lists must be fetched again
	else
		rm -f "$root/etc/sources.list.new"
	fi
	cat >"$root/apt.conf" <<EOF
Dir::Etc "$root/etc/";
Dir::Etc::main "/dev/null";
Dir::Etc::Parts "$root/etc/apt.conf.d/";
Dir::Etc::SourceList "$root/etc/sources.list";
Dir::Etc::SourceParts "$root/etc/sources.list.d/";
Dir::Etc::Preferences "$root/etc/preferences";
Dir::Etc::PreferencesParts "$root/etc/preferences.d/";
Dir::Etc::Trusted "$root/etc/trusted.gpg";
Dir::Etc::TrustedParts "$root/etc/trusted.gpg.d/";
Dir::State "$root/";
Dir::State::Lists "$root/lists/";
Dir::State::status "$root/status";
Dir::Cache "$root/";
Dir::Cache::Archives "$root/archives/";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Dir::Log "$root/log/";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Sandbox::User "root";
Acquire::Languages "none";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::CNF::DefaultEnabled "false";
Debug::NoLocking "true";
EOF
}
papt() { local name=$1; shift; APT_CONFIG="$CACHE/apt/$name/apt.conf" "$@"; }
apt_update() { # apt_update NAME [force]
	local name=$1
	if [[ ${2:-} == force ]] || ! compgen -G "$CACHE/apt/$name/lists/*_Packages*" >/dev/null; then
		log "reading the Debian archive index ($name)..."
		papt "$name" apt-get update -qq >/dev/null || die "apt-get update failed for the private '$name' config"
	fi
}

# deb_names NAME APT-GET-ARGS...: the .deb file names a simulated install would use.
deb_names() {
	local name=$1; shift
	papt "$name" apt-get -s -qq "$@" 2>/dev/null |
		sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) [^[]*\[\([^]]*\)\].*/\1_\2_\3.deb/p' | sed 's/:/%3a/g'
}

# ---------------------------------------------------------------- QEMU + virtiofsd
QEMU_PKGS=(qemu-system-x86 virtiofsd)
QEMU_PREFIX="$CACHE/qemu"

qemu_fetch() {
	apt_setup trixie "trixie trixie-backports"
	apt_update trixie "$([[ $REFRESH == 1 ]] && echo force)"
	local args=(install --download-only -y --no-install-recommends -t trixie-backports "${QEMU_PKGS[@]}")
	log "fetching QEMU (trixie-backports) and virtiofsd (trixie)..."
	if ! papt trixie apt-get -qq "${args[@]}" >/dev/null; then
		apt_update trixie force # stale lists: packages may have moved on
		papt trixie apt-get -qq "${args[@]}" >/dev/null || die "downloading QEMU packages failed"
	fi
	deb_names trixie "${args[@]}" | sort >"$CACHE/qemu-debs.txt"
	[[ -s "$CACHE/qemu-debs.txt" ]] || die "could not list the QEMU packages"
}

qemu_unpack() {
	local archives="$CACHE/apt/trixie/archives" deb tmp="$QEMU_PREFIX.tmp"
	log "unpacking QEMU into $QEMU_PREFIX..."
	rm -rf "$tmp"
	mkdir -p "$tmp"
	while read -r deb; do
		[[ -f "$archives/$deb" ]] || die "missing $archives/$deb (run with --refresh)"
		dpkg-deb -x "$archives/$deb" "$tmp"
	done <"$CACHE/qemu-debs.txt"
	# Swap directories rather than delete first: VMs may be running from the old prefix.
	rm -rf "$QEMU_PREFIX.old"
	[[ -d $QEMU_PREFIX ]] && mv "$QEMU_PREFIX" "$QEMU_PREFIX.old"
	mv "$tmp" "$QEMU_PREFIX"
	rm -rf "$QEMU_PREFIX.old"
}

# write_wrapper NAME PROGRAM [ARGS...]: $CACHE/bin/NAME runs PROGRAM from the prefix
# through the prefix's own dynamic loader and libraries.
write_wrapper() {
	local name=$1 prog=$2; shift 2
	local p="$QEMU_PREFIX" ldso="$QEMU_PREFIX/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" opts=""
	[[ -x $ldso ]] || die "no dynamic loader in the QEMU prefix"
	(($#)) && opts=" $*"
	cat >"$CACHE/bin/$name.new" <<EOF
#!/bin/sh
# Generated by vm-images/build.sh: $name from the private trixie prefix.
P='$p'
export QEMU_MODULE_DIR="\$P/usr/lib/x86_64-linux-gnu/qemu"
exec "\$P/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \\
	--library-path "\$P/usr/lib/x86_64-linux-gnu:\$P/lib/x86_64-linux-gnu" \\
	--argv0 "\$0" "\$P$prog"$opts "\$@"
EOF
	chmod +x "$CACHE/bin/$name.new"
	mv "$CACHE/bin/$name.new" "$CACHE/bin/$name"
}

qemu_wrappers() {
	# shellcheck disable=SC2016 # $P is expanded by the wrapper
	write_wrapper qemu-system-x86_64 /usr/bin/qemu-system-x86_64 \
		'-L "$P/usr/share/qemu" -L "$P/usr/share/seabios"'
	local vfs=/usr/libexec/virtiofsd
	[[ -x "$QEMU_PREFIX$vfs" ]] || vfs=/usr/bin/virtiofsd
	write_wrapper virtiofsd "$vfs"
	"$CACHE/bin/qemu-system-x86_64" --version >/dev/null || die "the QEMU wrapper does not run"
	"$CACHE/bin/virtiofsd" --version >/dev/null || die "the virtiofsd wrapper does not run"
}

step_qemu() {
	local k
	k="$(key_of apt_setup deb_names qemu_fetch -- "${QEMU_PKGS[@]}")"
	if ((REFRESH)) || ! stamp_ok qemu-fetch "$k" || [[ ! -s "$CACHE/qemu-debs.txt" ]]; then
		qemu_fetch
		stamp_set qemu-fetch "$k"
	fi
	k="$(key_of qemu_unpack write_wrapper qemu_wrappers -- "$(cat "$CACHE/qemu-debs.txt")")"
	if ! stamp_ok qemu "$k" || [[ ! -x "$CACHE/bin/qemu-system-x86_64" ]]; then
		qemu_unpack
		qemu_wrappers
		stamp_set qemu "$k"
	fi
}

# ---------------------------------------------------------------- guest packages
guest_fetch() {
	apt_setup bookworm "bookworm"
	apt_update bookworm "$([[ $REFRESH == 1 ]] && echo force)"
	local kpkg
	kpkg="$(papt bookworm apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -n1)"
	[[ -n $kpkg ]] || die "no linux-image-6.1.0-*-amd64 package found in bookworm"
	log "fetching the guest kernel ($kpkg) and busybox-static (bookworm)..."
	# Exactly these two .debs (apt-get download: no dependencies).
	local uris
	if ! uris="$(papt bookworm apt-get download -qq --print-uris "$kpkg" busybox-static)"; then
		apt_update bookworm force
		uris="$(papt bookworm apt-get download -qq --print-uris "$kpkg" busybox-static)" ||
			die "could not resolve the guest packages"
	fi
	local archives="$CACHE/apt/bookworm/archives" f
	(cd "$archives" && papt bookworm apt-get download -qq "$kpkg" busybox-static >/dev/null) ||
		die "downloading the guest packages failed"
	awk '{print $2}' <<<"$uris" | sort >"$CACHE/guest-debs.txt"
	while read -r f; do [[ -f "$archives/$f" ]] || die "apt-get download did not produce $f"; done <"$CACHE/guest-debs.txt"
	[[ $(wc -l <"$CACHE/guest-debs.txt") == 2 ]] || die "could not list the guest packages"
}

# ---------------------------------------------------------------- guest kernel
# extract_vmlinux BZIMAGE OUT: the ELF vmlinux inside a bzImage (boot protocol >= 2.08:
# payload_offset at 0x248 and payload_length at 0x24c, relative to the protected-mode
# code after the (setup_sects+1)*512 byte setup; the payload ends with a 4-byte size).
extract_vmlinux() {
	local bz=$1 out=$2 sects off len magic
	u() { od -An -t"u$2" -j "$1" -N "$2" "$bz" | tr -d ' '; }
	sects="$(u $((0x1f1)) 1)"
	((sects)) || sects=4
	off=$(((sects + 1) * 512 + $(u $((0x248)) 4)))
	len="$(u $((0x24c)) 4)"
	magic="$(od -An -tx1 -j "$off" -N 4 "$bz" | tr -d ' ')"
	local dec
	case "$magic" in
	1f8b*) dec="gzip -dc" ;;
	fd377a58) dec="xz -dc" ;;
	5d00*) dec="xz -dc --format=lzma" ;;
	28b52ffd) need_host zstd:zstd; dec="zstd -dcq" ;;
	425a68*) dec="bzip2 -dc" ;;
	*) die "unknown kernel payload compression (magic $magic)" ;;
	esac
	dd if="$bz" iflag=skip_bytes,count_bytes skip="$off" count=$((len - 4)) bs=1M status=none | $dec >"$out"
	[[ "$(od -An -c -N 4 "$out" | tr -d ' ')" == '177ELF' ]] || die "the extracted kernel is not an ELF file"
}

# ko_deps FILE: the modules FILE depends on (from its .modinfo "depends=").
ko_deps() { tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '; }

# kernel_build DEB DEST MODULE...: DEST/vmlinux, DEST/kernel/{kernel-version,modules/} from a
# linux-image .deb, with MODULE... and their dependencies (compressed modules are decompressed).
kernel_build() {
	local deb=$1 dest=$2; shift 2
	local wanted=("$@") work="$dest/kernel.tmp"
	[[ -f $deb ]] || die "missing $deb (run with --refresh)"
	mkdir -p "$dest"
	log "extracting the guest kernel and modules..."
	rm -rf "$work"
	mkdir -p "$work/x" "$work/out/modules"
	# (modules in /lib/modules, or /usr/lib/modules in merged-/usr packages such as trixie's)
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work/x" --wildcards './boot/vmlinuz-*' './*lib/modules/*'
	local vmlinuz kver mdir
	vmlinuz="$(ls "$work"/x/boot/vmlinuz-*)"
	kver="${vmlinuz##*/vmlinuz-}"
	mdir="$work/x/lib/modules/$kver"
	[[ -d $mdir ]] || mdir="$work/x/usr/lib/modules/$kver"
	[[ -d $mdir ]] || die "no modules for $kver in $deb"
	extract_vmlinux "$vmlinuz" "$work/out/vmlinux"
	echo "$kver" >"$work/out/kernel-version"

	# Index the modules by name (dashes as underscores), then resolve dependencies depth-first.
	declare -A path=() seen=()
	local f n order=()
	while IFS= read -r f; do
		n="${f##*/}"; n="${n%%.ko*}"; path[${n//-/_}]="$f"
	done < <(find "$mdir/kernel" -name '*.ko*')
	builtin_mod() { grep -q "/${1}.ko\$" "$mdir/modules.builtin" 2>/dev/null || grep -q "/${1//_/-}.ko\$" "$mdir/modules.builtin" 2>/dev/null; }
	visit() {
		local m=${1//-/_} d
		[[ -n ${seen[$m]:-} ]] && return 0
		seen[$m]=1
		if [[ -z ${path[$m]:-} ]]; then
			builtin_mod "$m" && return 0
			die "guest module $m not found in $kver"
		fi
		local ko="$work/ko/$m.ko"
		mkdir -p "$work/ko"
		case "${path[$m]}" in
		*.ko.xz) xz -dc "${path[$m]}" >"$ko" ;;
		*.ko.zst) need_host zstd:zstd; zstd -dcq "${path[$m]}" >"$ko" ;;
		*.ko.gz) gzip -dc "${path[$m]}" >"$ko" ;;
		*) cp "${path[$m]}" "$ko" ;;
		esac
		for d in $(ko_deps "$ko"); do visit "$d"; done
		cp "$ko" "$work/out/modules/$m.ko"
		order+=("$m.ko")
	}
	local m
	for m in "${wanted[@]}"; do visit "$m"; done
	printf '%s\n' "${order[@]}" >"$work/out/modules/order"
	rm -rf "$dest/kernel"
	mv "$work/out" "$dest/kernel"
	rm -rf "$work"
	mv "$dest/kernel/vmlinux" "$dest/vmlinux"
	log "guest kernel $kver, modules: ${order[*]}"
}

busybox_unpack() {
	local deb
	deb="$CACHE/apt/bookworm/archives/$(grep '^busybox-static' "$CACHE/guest-debs.txt")"
	[[ -f $deb ]] || die "missing $deb (run with --refresh)"
	rm -rf "$CACHE/busybox.tmp"
	mkdir -p "$CACHE/busybox.tmp"
	dpkg-deb -x "$deb" "$CACHE/busybox.tmp"
	cp "$CACHE/busybox.tmp/bin/busybox" "$CACHE/bin/busybox"
	rm -rf "$CACHE/busybox.tmp"
	local help
	help=$("$CACHE/bin/busybox" cpio --help 2>&1 || true) # (grep -q in a pipe could SIGPIPE busybox)
	[[ $help == *-o* ]] || die "busybox has no 'cpio -o'"
}

step_guest_kernel() {
	local k
	k="$(key_of apt_setup guest_fetch)"
	if ((REFRESH)) || ! stamp_ok guest-fetch "$k" || [[ ! -s "$CACHE/guest-debs.txt" ]]; then
		guest_fetch
		stamp_set guest-fetch "$k"
	fi
	k="$(key_of kernel_build extract_vmlinux ko_deps -- "${GUEST_MODULES[@]}" "$(grep '^linux-image' "$CACHE/guest-debs.txt")")"
	if ! stamp_ok kernel "$k" || [[ ! -f "$CACHE/guest/vmlinux" ]]; then
		kernel_build "$CACHE/apt/bookworm/archives/$(grep '^linux-image' "$CACHE/guest-debs.txt")" \
			"$CACHE/guest" "${GUEST_MODULES[@]}"
		stamp_set kernel "$k"
	fi
	k="$(key_of busybox_unpack -- "$(grep '^busybox' "$CACHE/guest-debs.txt")")"
	if ! stamp_ok busybox "$k" || [[ ! -x "$CACHE/bin/busybox" ]]; then
		busybox_unpack
		stamp_set busybox "$k"
	fi
}

# ---------------------------------------------------------------- optional 6.12 guest kernel
# Debian trixie's 6.12 kernel (has cache=readahead, new in 6.6), from the private trixie apt
# config shared with QEMU. Same modules as 6.1, except fscache: since 6.8 FS-Cache is part of
# the netfs module (CONFIG_FSCACHE is a bool option of netfs), so there is no fscache.ko.
GUEST_MODULES_612=(virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio virtio_pci
	9pnet 9pnet_virtio netfs 9p virtiofs overlay)

guest612_fetch() {
	apt_setup trixie "trixie trixie-backports"
	apt_update trixie "$([[ $REFRESH == 1 ]] && echo force)"
	local kpkg pick='s/^ *Depends: \(linux-image-6\.12\.[^ ]*-amd64\)$/\1/p'
	kpkg="$(papt trixie apt-cache depends -t trixie linux-image-amd64 2>/dev/null | sed -n "$pick" | head -n1)"
	if [[ -z $kpkg ]]; then
		apt_update trixie force
		kpkg="$(papt trixie apt-cache depends -t trixie linux-image-amd64 2>/dev/null | sed -n "$pick" | head -n1)"
	fi
	[[ -n $kpkg ]] || die "no linux-image-6.12.*-amd64 package found in trixie"
	log "fetching the 6.12 guest kernel ($kpkg, trixie)..."
	local uris archives="$CACHE/apt/trixie/archives" f
	if ! uris="$(papt trixie apt-get download -qq --print-uris "$kpkg")"; then
		apt_update trixie force
		uris="$(papt trixie apt-get download -qq --print-uris "$kpkg")" || die "could not resolve $kpkg"
	fi
	f="$(awk '{print $2}' <<<"$uris")"
	[[ $f == linux-image-6.12.*.deb ]] || die "unexpected package file for $kpkg: $f"
	# (apt-get download keeps an already downloaded file whose checksum matches)
	(cd "$archives" && papt trixie apt-get download -qq "$kpkg" >/dev/null) || die "downloading $kpkg failed"
	[[ -f "$archives/$f" ]] || die "apt-get download did not produce $f"
	echo "$f" >"$CACHE/guest-6.12-debs.txt"
}

step_guest_kernel_612() {
	local k
	k="$(key_of apt_setup guest612_fetch)"
	if ((REFRESH)) || ! stamp_ok guest-6.12-fetch "$k" || [[ ! -s "$CACHE/guest-6.12-debs.txt" ]]; then
		guest612_fetch
		stamp_set guest-6.12-fetch "$k"
	fi
	k="$(key_of kernel_build extract_vmlinux ko_deps -- "${GUEST_MODULES_612[@]}" "$(cat "$CACHE/guest-6.12-debs.txt")")"
	if ! stamp_ok kernel-6.12 "$k" || [[ ! -f "$CACHE/guest-6.12/vmlinux" ]]; then
		kernel_build "$CACHE/apt/trixie/archives/$(cat "$CACHE/guest-6.12-debs.txt")" \
			"$CACHE/guest-6.12" "${GUEST_MODULES_612[@]}"
		stamp_set kernel-6.12 "$k"
	fi
}

# ---------------------------------------------------------------- guest tools + initramfs
# The guest tools' sources: vm-images/guest-tools/*.c, plus the differential POSIX suite
# (tests/posix-suite/posix_suite.c, installed as posix-suite). A tool is named after its
# file, with '_' turned into '-'.
guest_tool_sources() {
	local src
	for src in "$HERE"/guest-tools/*.c "$HERE"/../tests/posix-suite/*.c; do
		[[ -f $src ]] && echo "$src"
	done
	return 0
}

tools_build() {
	need_host gcc:gcc /usr/lib/x86_64-linux-gnu/libc.a:libc6-dev
	log "compiling the guest tools..."
	rm -rf "$CACHE/guest/tools.tmp"
	mkdir -p "$CACHE/guest/tools.tmp"
	local src name
	while IFS= read -r src; do
		name="$(basename "$src" .c)"
		gcc -static -O2 -Wall -s -o "$CACHE/guest/tools.tmp/${name//_/-}" "$src"
	done < <(guest_tool_sources)
	rm -rf "$CACHE/guest/tools"
	mv "$CACHE/guest/tools.tmp" "$CACHE/guest/tools"
}

# initrd_build DEST: DEST/initrd.gz from busybox, the guest tools, DEST/kernel/modules and /init.
initrd_build() {
	local dest=$1 root="$1/initrd.root"
	log "packing the initramfs..."
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,mnt,root,lib/modules,usr/bin,usr/sbin}
	cp "$CACHE/bin/busybox" "$root/bin/busybox"
	cp "$CACHE"/guest/tools/* "$root/usr/bin/"
	cp "$dest"/kernel/modules/* "$root/lib/modules/"
	cp "$dest/kernel/kernel-version" "$root/etc/kernel-version"
	install -m 0755 "$HERE/guest-init.sh" "$root/init"
	# Interactive shells: leaving the shell (exit, poweroff, reboot) powers the guest off.
	cat >"$root/etc/profile" <<'EOF'
export PS1='vu9p-guest:\w# '
alias poweroff=exit halt=exit reboot=exit
EOF
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | "$CACHE/bin/busybox" cpio -o -H newc 2>/dev/null) |
		gzip -6 >"$dest/initrd.gz.new"
	mv "$dest/initrd.gz.new" "$dest/initrd.gz"
	rm -rf "$root"
}

step_initrd() {
	local k tools_key
	tools_key="$(guest_tool_sources | while IFS= read -r f; do echo "$f"; cat "$f"; done | sha256sum | cut -c1-16)"
	k="$(key_of tools_build guest_tool_sources -- "$tools_key")"
	if ! stamp_ok tools "$k" || [[ ! -d "$CACHE/guest/tools" ]]; then
		tools_build
		stamp_set tools "$k"
	fi
	k="$(key_of initrd_build -- "$tools_key" "$(cat "$STAMPS/kernel" "$STAMPS/busybox")" \
		"$(sha256sum <"$HERE/guest-init.sh")")"
	if ! stamp_ok initrd "$k" || [[ ! -f "$CACHE/guest/initrd.gz" ]]; then
		initrd_build "$CACHE/guest"
		stamp_set initrd "$k"
	fi
	((KERNEL_612)) || return 0
	k="$(key_of initrd_build -- "$tools_key" "$(cat "$STAMPS/kernel-6.12" "$STAMPS/busybox")" \
		"$(sha256sum <"$HERE/guest-init.sh")")"
	if ! stamp_ok initrd-6.12 "$k" || [[ ! -f "$CACHE/guest-6.12/initrd.gz" ]]; then
		initrd_build "$CACHE/guest-6.12"
		stamp_set initrd-6.12 "$k"
	fi
}

# ---------------------------------------------------------------- main
need_host xz:xz-utils dpkg-deb:dpkg python3:python3
step_qemu
step_guest_kernel
((KERNEL_612)) && step_guest_kernel_612
step_initrd
log "ready in $CACHE ($("$CACHE/bin/qemu-system-x86_64" --version | head -n1), kernel $(cat "$CACHE/guest/kernel/kernel-version")$( ((KERNEL_612)) && echo ", $(cat "$CACHE/guest-6.12/kernel/kernel-version")"))"
