# Guest half of tests/vm_cache_modes.rs: what every cache mode must do.
# VU9P_CACHE_MODE names the mode; prints "ok NAME" / "FAIL NAME: why".
M=/mnt
fails=0
expect() {
	if [ "$2" = "$3" ]; then echo "ok $1"; else echo "FAIL $1: expected [$2], got [$3]"; fails=$((fails + 1)); fi
}
mode=$VU9P_CACHE_MODE
grep " $M " /proc/mounts
# /proc/mounts names the mode (none shows as "sync", readahead as nothing).
opts=$(grep " $M " /proc/mounts | cut -d' ' -f4)
case $mode in
none) want=sync ;;
readahead) want=rw ;;
*) want=$mode ;;
esac
expect mounted-with-mode "yes" "$(echo ",$opts," | grep -q ",$want," && echo yes || echo "no: $opts")"

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
