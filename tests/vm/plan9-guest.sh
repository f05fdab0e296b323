# Guest half of tests/vm_plan9.rs (run through vm-images/runvm.py; busybox sh;
# the share is mounted on /mnt with version=$VU9P_VERSION: 9p2000, 9p2000.u or
# 9p2000.L). With VU9P_CTL=1 the daemon runs with --ctl and the control
# namespace is checked too.
# Prints "ok NAME" or "FAIL NAME: why" per check and "HOSTCHECK key=value"
# lines for the host half; exits with the number of failed checks.
M=/mnt
v=$VU9P_VERSION
fails=0
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
# expect NAME EXPECTED ACTUAL
expect() {
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected [$2], got [$3]"; fi
}
# check NAME COMMAND...: the command must succeed
check() {
	name=$1
	shift
	if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$* -> $out"; fi
}
echo "dialect $v, ctl ${VU9P_CTL:-no}: $(grep " $M " /proc/mounts)"

# --- files and directories (every dialect) ---
expect read-host-file "hello from the host" "$(cat $M/hello.txt)"
expect stat-size 20 "$(stat -c %s $M/hello.txt)"
echo "written by the guest" >$M/new.txt
expect write-read "written by the guest" "$(cat $M/new.txt)"
echo "second line" >>$M/new.txt
expect append "$(printf 'written by the guest\nsecond line')" "$(cat $M/new.txt)"
mv $M/new.txt $M/renamed.txt
expect rename "written by the guest missing" "$(head -n 1 $M/renamed.txt) $(test -e $M/new.txt && echo present || echo missing)"
mkdir $M/newdir
check mkdir test -d $M/newdir
echo inside >$M/newdir/inner.txt
echo two >$M/newdir/second.txt
expect create-in-new-dir "inside" "$(cat $M/newdir/inner.txt)"
expect list-new-dir "inner.txt second.txt" "$(echo $(ls $M/newdir))"
# (9P2000 and .u have no cross-directory rename: the kernel answers EXDEV and mv copies)
echo across >$M/across.txt
mv $M/across.txt $M/newdir/moved.txt
expect rename-across-dirs "across missing" "$(cat $M/newdir/moved.txt) $(test -e $M/across.txt && echo present || echo missing)"
rm $M/newdir/second.txt
check unlink test ! -e $M/newdir/second.txt
mkdir $M/gone && rmdir $M/gone
check rmdir test ! -e $M/gone
echo m >$M/modes
chmod 640 $M/modes
expect chmod 640 "$(stat -c %a $M/modes)"
touch -t 200102030405.06 $M/modes
expect utime 981173106 "$(stat -c %Y $M/modes)"
truncate -s 3 $M/trunc.txt
expect truncate "3 012" "$(stat -c %s $M/trunc.txt) $(cat $M/trunc.txt)"
check fsync dd if=/dev/zero of=$M/synced bs=4k count=2 conv=fsync

# --- symlinks: followed by the server in 9P2000, visible in .u and .L ---
case $v in
9p2000)
	expect symlink-followed "hello from the host" "$(cat $M/link_to_hello)"
	expect symlink-shows-as-file "no" "$(test -L $M/link_to_hello && echo yes || echo no)"
	;;
*)
	expect symlink-readlink "hello.txt" "$(readlink $M/link_to_hello)"
	ln -s hello.txt $M/guestlink
	expect symlink-create "hello.txt" "$(readlink $M/guestlink)"
	expect symlink-follow "hello from the host" "$(cat $M/guestlink)"
	ln $M/hello.txt $M/hardlink
	# (9P2000.u stat has no link count, so the client shows 1: compare inodes, from qid.path)
	expect hard-link "$(stat -c %i $M/hello.txt) hello from the host" "$(stat -c %i $M/hardlink) $(cat $M/hardlink)"
	mkfifo $M/fifo
	check mkfifo test -p $M/fifo
	;;
esac

# --- the control namespace ---
if [ -n "$VU9P_CTL" ]; then
	line=$(cat $M/,ctl/stamped.txt 2>&1)
	case "$line" in
	"dev "*) ok ctl-read ;;
	*) fail ctl-read "expected a line starting [dev ], got [$line]" ;;
	esac
	echo "HOSTCHECK ctl_stamped=$line"
	nf=$(cat $M/,ctl,nofollow/link_to_hello 2>&1)
	case "$nf" in
	*" symlink hello.txt") ok ctl-read-nofollow ;;
	*) fail ctl-read-nofollow "expected a line ending in [ symlink hello.txt], got [$nf]" ;;
	esac
	expect ctl-hidden-in-listing 0 "$(ls -a $M | grep -c '^,')"
	check ctl-write-symlink sh -c "printf 'symlink target-text newlink\n' >>$M/,ctl/,"
	check ctl-write-chmod sh -c "printf 'chmod 600\n' >>$M/,ctl/chm.txt"
	# A shell's ">" opens with O_TRUNC, and the kernel then truncates the file to 0
	# (9P2000: Topen OTRUNC + Twstat length 0 and mtime; .L: Tsetattr size 0).
	check ctl-write-with-truncating-redirect sh -c "printf 'chmod 640\n' >$M/,ctl/chm2.txt"
	expect ctl-chmod-after-truncating-redirect 640 "$(stat -c %a $M/chm2.txt)"
	expect ctl-chmod-seen 600 "$(stat -c %a $M/chm.txt)"
	check ctl-write-bad-command-fails sh -c "! printf 'chmod 999\n' >>$M/,ctl/chm.txt"
	expect ctl-bad-command-changed-nothing 600 "$(stat -c %a $M/chm.txt)"
	if [ "$v" = 9p2000 ]; then
		# A symlink under ,nofollow is an append-only file holding its target.
		expect ctl-symlink-seen target-text "$(cat $M/,nofollow/newlink)"
	else
		expect ctl-symlink-seen target-text "$(readlink $M/newlink)"
	fi
else
	check no-ctl-without-the-flag test ! -e $M/,ctl
fi

echo "HOSTCHECK listing=$(ls -a $M | tr '\n' '/')"
echo "guest: $fails failed"
exit $fails
