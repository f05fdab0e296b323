# Guest side of benches/vm/vm-bench.py (busybox sh; run by vm-images/runvm.py, share on /mnt).
# Inputs, made and cached by the host: /mnt/in/{big,par0..par3,source.tar,nop,tree/,small/,store/}
# (store/: benches/vm/store.py's store, with its guest side .guest-store.sh).
# Everything written goes to /mnt/out (emptied by the host after each VM).
# Sizes come from the environment (set by vm-bench.py; the input files' sizes are the host's):
#   BENCH_WORKLOADS  names to run, in order
#   BENCH_RAND_READS number of 4 KiB preads   BENCH_FILES   files to create/stat/delete
#   BENCH_WRITE_MB   MiB written              BENCH_PAR_MB  MiB copied by each of 4 processes
#   BENCH_EXECS      runs of /mnt/in/nop
# Before each workload the guest's caches are dropped (the host keeps its own warm), so every
# figure starts from a cold client.  Output: one line per workload,
#   BENCH-RESULT NAME START END     (CLOCK_MONOTONIC seconds, from the guest tool `clock`)
# and around each, VU9P-CPU-SAMPLE lines, which runvm.py turns into the server's CPU seconds.
# A failure prints BENCH-FAIL NAME and makes the script exit 1.
set -u
IN=/mnt/in OUT=/mnt/out
mkdir -p "$OUT" || exit 1
status=0

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

repeat() { # repeat N CMD...: run CMD N times
	n=$1
	shift
	i=0
	while [ "$i" -lt "$n" ]; do
		"$@" || return 1
		i=$((i + 1))
	done
}

create_files() { # create_files DIR N: N files of 4 bytes, f0..f(N-1)
	mkdir "$1" && cd "$1" || return 1
	i=0
	while [ "$i" -lt "$2" ]; do
		echo abc >"f$i" || return 1
		i=$((i + 1))
	done
	cd /
}

parallel_copy() { # 4 processes, each copying its own host-cached file into a new file + fsync
	pids=
	for k in 0 1 2 3; do
		dd if="$IN/par$k" of="$OUT/par$k" bs=1M count="$BENCH_PAR_MB" conv=fsync 2>/dev/null &
		pids="$pids $!"
	done
	ok=0
	for p in $pids; do
		wait "$p" || ok=1
	done
	return $ok
}

workload() { # workload NAME: run it between two clock readings
	case "$1" in
	seq-read) dd if="$IN/big" of=/dev/null bs=1M 2>/dev/null ;;
	seq-write) dd if=/dev/zero of="$OUT/big" bs=1M count="$BENCH_WRITE_MB" conv=fsync 2>/dev/null ;;
	rand-read) randread "$IN/big" "$BENCH_RAND_READS" 4096 >/dev/null ;;
	create) create_files "$OUT/files" "$BENCH_FILES" ;;
	# /bin/stat, not stat: busybox 1.35's xargs runs a bare applet name in its own process
	# (NOFORK) and mangles the names of every batch after the first (5,300 names here).
	stat) (cd "$OUT/files" && xargs /bin/stat -c %i </tmp/names >/dev/null) ;;
	ls-lR) ls -lR "$IN/tree" >/dev/null ;;
	delete) rm -r "$OUT/files" ;;
	untar) mkdir "$OUT/src" && dd if="$IN/source.tar" bs=1M 2>/dev/null | tar -x -C "$OUT/src" ;;
	scan) grep -r -l -F vu9p-bench-no-such-string "$OUT/src"; [ $? = 1 ] ;; # 1: read all, no match
	exec) repeat "$BENCH_EXECS" "$IN/nop" ;;
	parallel) parallel_copy ;;
	# Each file: a walk, a getattr, an open, a small read and a clunk.
	cat-small) cat "$IN"/small/d0[0-9]/* >/dev/null ;;
	head-small) head -c 1 "$IN"/small/*/* >/dev/null ;;
	store-*) store_workload "${1#store-}" ;;
	*) echo "unknown workload $1" >&2; return 1 ;;
	esac
}

# Untimed preparation some workloads need (their inputs come from earlier workloads).
store_ready=
prepare() {
	case "$1" in
	store-*) if [ -z "$store_ready" ]; then # the build VM's mounts, once
		. "$IN/store/.guest-store.sh" && store_setup "$IN/store" || return 1
		store_ready=1
	fi
	case "$1" in *-10) store_workload "${1#store-}" ;; esac ;; # once before the warm runs
	stat) [ -d "$OUT/files" ] || create_files "$OUT/files" "$BENCH_FILES" || return 1
		awk -v n="$BENCH_FILES" 'BEGIN { for (i = 0; i < n; i++) print "f" i }' >/tmp/names ;;
	delete) [ -d "$OUT/files" ] || create_files "$OUT/files" "$BENCH_FILES" ;;
	scan) [ -d "$OUT/src" ] || workload untar ;;
	esac
}

for w in $BENCH_WORKLOADS; do
	prepare "$w" >/dev/null 2>&1
	case "$w" in
	*-10) ;; # warm: right after the untimed run
	*) drop_caches ;;
	esac
	echo "VU9P-CPU-SAMPLE $w-start" # the host notes the server's CPU (runvm.py)
	t0=$(clock)
	if workload "$w"; then
		t1=$(clock)
		echo "VU9P-CPU-SAMPLE $w-end"
		echo "BENCH-RESULT $w $t0 $t1"
	else
		echo "BENCH-FAIL $w"
		status=1
	fi
	rm -f "$OUT/big" "$OUT"/par? # (untimed: big outputs are not kept for later workloads)
done
exit $status
