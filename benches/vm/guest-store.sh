# Guest side of the store workloads (busybox sh; sourced, not run): a store made by
# benches/vm/store.py, set up as in a NixOS build VM: the store read-only on
# /nix/.ro-store, and /nix/store an overlay of it with a tmpfs upper layer (NixOS's
# virtualisation.writableStore), so builds can add paths to /nix/store.
#   store_setup RO_DIR   RO_DIR: the store on the share (e.g. /mnt/in/store)
#   store_workload NAME  gcc-version      one `gcc --version`
#                        gcc-version-10   10 of them
#                        compile          compile and link hello.c (46 headers), run it
#                        compile-10       10 of them
#                        find             find over the whole store
#                        read-headers     read every file of the header packages
# Both return non-zero on failure.  Caches are the caller's business (drop them before
# a workload for a cold figure).  store_setup reads the .bench.env store.py writes:
# STORE_GCC, STORE_HELLO_C, STORE_HEADER_PACKAGES; without it only the mounts are made.

store_setup() {
	# NixOS mounts a 9p share of its own on /nix/.ro-store; here a single share carries
	# everything the benchmark uses, so the store's directory on it is bind-mounted there.
	mkdir -p /nix/.ro-store /nix/.rw-store /nix/store &&
		mount -o bind "$1" /nix/.ro-store &&
		mount -o remount,bind,ro /nix/.ro-store &&
		mount -t tmpfs -o mode=0755 tmpfs /nix/.rw-store &&
		mkdir /nix/.rw-store/store /nix/.rw-store/work &&
		mount -t overlay overlay \
			-o lowerdir=/nix/.ro-store,upperdir=/nix/.rw-store/store,workdir=/nix/.rw-store/work \
			/nix/store || return 1
	STORE_WORK=/tmp/store-work # build outputs: on the guest's tmpfs, as a build sandbox's
	mkdir -p "$STORE_WORK" || return 1
	if [ -f /nix/store/.bench.env ]; then
		. /nix/store/.bench.env
	fi
}

store_repeat() { # store_repeat N CMD...
	_n=$1
	shift
	while [ "$_n" -gt 0 ]; do
		"$@" || return 1
		_n=$((_n - 1))
	done
}

store_compile() { # compile and link hello.c, then check that the program runs
	rm -f "$STORE_WORK/hello" &&
		"$STORE_GCC" -O1 -o "$STORE_WORK/hello" "$STORE_HELLO_C" -lm || return 1
	case "$("$STORE_WORK/hello")" in
	"hello from the store"*) ;;
	*) return 1 ;;
	esac
}

store_workload() {
	case "$1" in
	gcc-version) "$STORE_GCC" --version >/dev/null ;;
	gcc-version-10) store_repeat 10 "$STORE_GCC" --version >/dev/null ;;
	compile) store_compile ;;
	compile-10) store_repeat 10 store_compile ;;
	find) find /nix/store >/dev/null ;;
	# /bin/cat, not cat: busybox's xargs runs a bare applet name in its own process (NOFORK)
	# and has mangled later batches' names that way.  (Store names have no blanks.)
	read-headers) [ -n "$STORE_HEADER_PACKAGES" ] && find $STORE_HEADER_PACKAGES -type f | xargs /bin/cat >/dev/null ;;
	*) echo "store_workload: unknown workload $1" >&2; return 1 ;;
	esac
}
