#!/bin/busybox sh
# /init of the vhost-user-9p test guest (busybox).  Settings come from /vu9p.env
# (written by runvm.py into a second cpio archive, next to /run.sh) and from
# unknown KEY=VALUE kernel arguments, which the kernel passes as environment:
#   VU9P_TAG VU9P_VERSION VU9P_MSIZE VU9P_CACHE_MODE VU9P_MOUNT_OPTS VU9P_NO_MOUNT
#   VU9P_FSTYPE (9p, or virtiofs: mount -t virtiofs TAG /mnt) VU9P_INTERACTIVE VU9P_ROWS VU9P_COLS, plus the user's --env variables.
# Output protocol on the console (not in interactive mode): a line
# VU9P-SCRIPT-START, the script's output, then a line VU9P-EXIT-STATUS=N.
/bin/busybox --install -s /bin
export PATH=/usr/bin:/bin:/sbin:/usr/sbin HOME=/root TERM="${TERM:-linux}"

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mount -t tmpfs -o mode=0755 dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ip link set lo up 2>/dev/null
hostname vu9p-guest

[ -f /vu9p.env ] && . /vu9p.env

finish() { # finish STATUS: report, clean up, power off (never returns)
	[ -n "$VU9P_INTERACTIVE" ] || echo "VU9P-EXIT-STATUS=$1"
	sync
	if grep -q "^[^ ]* /mnt " /proc/mounts; then
		umount /mnt 2>/dev/null || umount -l /mnt 2>/dev/null
	fi
	poweroff -f
	sleep 5
	exit "$1" # reached only if poweroff failed: the kernel panics and QEMU exits (-no-reboot)
}

[ -n "$VU9P_INTERACTIVE" ] || echo VU9P-SCRIPT-START

for m in $(cat /lib/modules/order); do
	if ! out=$(insmod "/lib/modules/$m" 2>&1); then
		case "$out" in
		*"File exists"*) ;;
		*) echo "vu9p-init: insmod $m failed: $out"; finish 125 ;;
		esac
	fi
done

if [ -z "$VU9P_NO_MOUNT" ]; then
	if [ "$VU9P_FSTYPE" = virtiofs ]; then # virtiofsd (comparisons): its options are the server's
		fstype=virtiofs opts="${VU9P_MOUNT_OPTS:-defaults}"
	else
		fstype=9p opts="trans=virtio,version=${VU9P_VERSION:-9p2000.L},msize=${VU9P_MSIZE:-512000},cache=${VU9P_CACHE_MODE:-none}"
		[ -n "$VU9P_MOUNT_OPTS" ] && opts="$opts,$VU9P_MOUNT_OPTS"
	fi
	if ! out=$(mount -t "$fstype" -o "$opts" "${VU9P_TAG:-vu9p}" /mnt 2>&1); then
		echo "vu9p-init: mount -t $fstype -o $opts ${VU9P_TAG:-vu9p} /mnt failed: $out"
		finish 125
	fi
fi

cd /
if [ -n "$VU9P_INTERACTIVE" ]; then
	[ -n "$VU9P_ROWS" ] && stty rows "$VU9P_ROWS" cols "$VU9P_COLS" 2>/dev/null
	echo "vu9p guest: $(cat /etc/kernel-version), share on /mnt. 'exit' or 'poweroff' ends the VM."
	ENV=/etc/profile setsid cttyhack sh -l
	status=$?
elif [ -f /run.sh ]; then
	sh /run.sh </dev/null
	status=$?
else
	echo "vu9p-init: no /run.sh"
	status=125
fi
finish "$status"
