# Guest half of the VM end-to-end test (run by tests/vm_e2e.rs through
# vm-images/runvm.py; busybox sh; the share is mounted on /mnt).
# Prints "ok NAME" or "FAIL NAME: why" per check and "HOSTCHECK key=value"
# lines for the host half; exits with the number of failed checks.
M=/mnt
fails=0
t0=$(clock)
section() { echo "section $1 starts at $(clock) (script start $t0)"; }
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

# --- files ---
section "files"
expect read-host-file "hello from host" "$(cat $M/readme.txt)"
echo abc >$M/w.txt
expect create-write "abc" "$(cat $M/w.txt)"
echo def >>$M/w.txt
expect append "$(printf 'abc\ndef')" "$(cat $M/w.txt)"
truncate -s 2 $M/w.txt
expect truncate "2 ab" "$(stat -c %s $M/w.txt) $(cat $M/w.txt)"
printf 0123456789 >$M/ow.txt
printf XY | dd of=$M/ow.txt bs=1 seek=3 conv=notrunc 2>/dev/null
expect overwrite-middle "012XY56789" "$(cat $M/ow.txt)"

# --- directories ---
section "directories"
mkdir $M/d1
check mkdir test -d $M/d1
rmdir $M/d1
check rmdir test ! -e $M/d1
mkdir -p $M/deep/a/b/c
echo deep >$M/deep/a/b/c/f
expect nested-dirs "deep" "$(cat $M/deep/a/b/c/f)"
rm -r $M/deep
check rm-r test ! -e $M/deep
mkdir $M/notempty && touch $M/notempty/x
check rmdir-not-empty-fails sh -c "! rmdir $M/notempty 2>/dev/null"

# --- renames ---
section "renames"
echo x >$M/ra
mv $M/ra $M/rb
expect rename-file "x missing" "$(cat $M/rb) $(test -e $M/ra && echo present || echo missing)"
mkdir $M/dA && echo in >$M/dA/f
mv $M/dA $M/dB
expect rename-dir "in" "$(cat $M/dB/f)"
echo new >$M/r1
echo old >$M/r2
mv $M/r1 $M/r2
expect rename-over-file "new missing" "$(cat $M/r2) $(test -e $M/r1 && echo present || echo missing)"
mkdir $M/dC
mv $M/rb $M/dC/rb
expect rename-across-dirs "x" "$(cat $M/dC/rb)"

# --- links ---
section "links"
echo L >$M/l1
ln $M/l1 $M/l2
expect hard-link "2 L $(stat -c %i $M/l1)" "$(stat -c %h $M/l1) $(cat $M/l2) $(stat -c %i $M/l2)"
ln -s readme.txt $M/sl
expect symlink-readlink "readme.txt" "$(readlink $M/sl)"
expect symlink-follow "hello from host" "$(cat $M/sl)"
ln -s nowhere $M/dangling
expect dangling-symlink "nowhere missing" "$(readlink $M/dangling) $(test -e $M/dangling && echo present || echo missing)"

# --- special files, metadata ---
section "special files, metadata"
mkfifo $M/fifo
check mknod-fifo test -p $M/fifo
echo m >$M/modes
chmod 640 $M/modes
expect chmod "640" "$(stat -c %a $M/modes)"
touch -t 200102030405.06 $M/modes
expect utime "981173106" "$(stat -c %Y $M/modes)"
blocks=$(stat -f -c %b $M)
check statfs test "$blocks" -gt 0
check fsync dd if=/dev/zero of=$M/synced bs=4k count=4 conv=fsync
expect fsync-size "16384" "$(stat -c %s $M/synced)"

# --- use after unlink, mmap ---
section "use after unlink, mmap"
check unlinked-while-open openunlink $M/ou.txt
check unlinked-gone test ! -e $M/ou.txt
expect mmap-read "hello from host" "$(mmapread $M/readme.txt)"

# --- locks (fcntl, flock) ---
section "locks"
echo lock >$M/lk
ln $M/lk $M/lk_link
check lock-posix-two-processes locktest posix $M/lk
# A hard link is another guest inode (cache=none): only the server sees the conflicts.
check lock-server-conflicts-through-link locktest server $M/lk $M/lk_link
check lock-flock locktest flock $M/lk $M/lk_link
expect lock-released-at-exit ok "$(locktest try $M/lk_link w 0 0)"

# --- a directory of 10,000 files ---
section "a directory of 10,000 files"
ls $M/many >/tmp/many.txt
expect list-10000 "10000" "$(wc -l </tmp/many.txt)"
echo "HOSTCHECK many_md5=$(md5sum </tmp/many.txt | cut -d' ' -f1)"
expect list-10000-stat "-rw-r--r-- 0" "$(ls -l $M/many/f09999 | cut -c1-10) $(stat -c %s $M/many/f09999)"

section "256 MiB in and out"
dd if=/dev/urandom of=/tmp/big bs=1M count=256 2>/dev/null
echo "HOSTCHECK big_in=$(sha256sum /tmp/big | cut -d' ' -f1)"
check copy-in dd if=/tmp/big of=$M/big_in.bin bs=1M
rm /tmp/big
check copy-out dd if=$M/big.bin of=/tmp/bigout bs=1M
echo "HOSTCHECK big_out=$(sha256sum /tmp/bigout | cut -d' ' -f1)"
rm /tmp/bigout
echo "HOSTCHECK mid_mmap=$(mmapread $M/mid.bin | sha256sum | cut -d' ' -f1)"

# --- escapes: the guest sees only the share ---
section "escapes: the guest sees only the share"
check symlink-out-abs sh -c "! grep -q HOST-SECRET $M/to_secret_abs 2>/dev/null"
check symlink-out-rel sh -c "! grep -q HOST-SECRET $M/to_secret_rel 2>/dev/null"
expect dotdot-of-root "$(ls -a /)" "$(ls -a $M/..)"
expect dotdot-chain "$(ls -a /)" "$(cd $M/dB/../.. && ls -a)"
# (regular files only: opening the fifo would wait for a writer)
check no-secret-anywhere sh -c "! find $M -type f -size -64k -exec grep -l HOST-SECRET {} + | grep -q ."

# --- deletions ---
section "deletions"
rm $M/w.txt $M/l2
check unlink test ! -e $M/w.txt
check unlink-link-count test "$(stat -c %h $M/l1)" = 1

echo "guest: $fails failed"
exit $fails
