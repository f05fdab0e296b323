# Guest half of tests/vm_cache_modes.rs: what every cache mode must do.
# VU9P_CACHE_MODE names the mode; prints "ok NAME" / "FAIL NAME: why".
M=/mnt
fails=0
expect() {
	if [ "$2" = "$3" ]; then echo "ok $1"; else echo "FAIL $1: expected [$2], got [$3]"; fails=$((fails + 1)); fi
}
mode=$VU9P_CACHE_MODE
echo "kernel $(uname -r)"
grep " $M " /proc/mounts
# /proc/mounts names the mode. Before Linux 6.6: by name, and none shows as "sync" (the
# superblock was synchronous). Since 6.6 (the cache rework that added readahead): as the hex
# cache flags (readahead 0x1, mmap 0x5, loose 0xf, fscache 0x8f), and none as no cache= at all.
opts=$(grep " $M " /proc/mounts | cut -d' ' -f4)
case $(uname -r) in
[0-5].* | 6.[0-5].* | 6.[0-5]-*) flags= ;;
*) flags=yes ;;
esac
case $flags:$mode in
:none) want=sync ;;
yes:none) want= ;;
yes:readahead) want=cache=0x1 ;;
yes:mmap) want=cache=0x5 ;;
yes:loose) want=cache=0xf ;;
yes:fscache) want=cache=0x8f ;;
*) want=$mode ;;
esac
if [ -n "$want" ]; then
	named=$(echo ",$opts," | grep -q ",$want," && echo yes || echo "no ($want): $opts")
else
	named=$(echo ",$opts," | grep -q ",cache=" && echo "no (no cache=): $opts" || echo yes)
fi
expect mounted-with-mode "yes" "$named"

echo "from $mode" >$M/plain
expect write-read "from $mode" "$(cat $M/plain)"
# O_WRONLY open (the client may upgrade it to O_RDWR under writeback modes)
printf 'abc' >$M/wronly
printf 'XY' | dd of=$M/wronly bs=1 seek=1 conv=notrunc 2>/dev/null
expect wronly-overwrite "aXY" "$(cat $M/wronly)"
: >$M/mapped
if [ "$mode" = none ] || [ "$mode" = readahead ]; then
	# No writable shared mappings without a page cache: the kernel refuses.
	expect mmap-shared-write-refused "yes" "$(mmapwrite $M/mapped shared-write >/dev/null 2>&1 || echo yes)"
else
	expect mmap-shared-write "shared-write" "$(mmapwrite $M/mapped shared-write)"
fi
expect mmap-read "from $mode" "$(mmapread $M/plain)"
# (busybox picks its applet from argv[0]: keep the name)
mkdir $M/bin
cp /bin/busybox $M/bin/busybox
chmod 755 $M/bin/busybox
expect exec-from-share "hello" "$($M/bin/busybox echo hello 2>&1)"
i=0
while [ $i -lt 20 ]; do $M/bin/busybox true || break; i=$((i + 1)); done
expect exec-repeated "20" "$i"
echo "checks done: $fails failed"
exit $fails
