#!/bin/sh
# /init of nodevisor's Debian guest image (busybox ash, PID 1 in the initramfs).
# Proves user space runs on every vCPU: it reports the CPU count, runs one
# busy loop per CPU at once, reports how long they took together (about one
# loop's time when the CPUs really run in parallel, N times that when not),
# and powers the machine off. The host-side tests match the two
# "nodevisor-init:" lines, so keep their wording.
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys

cpus=$(nproc)
echo "nodevisor-init: $cpus CPUs online"

# /proc/uptime has centiseconds ("12.34 ..."); busybox date has no %N.
now_ms() {
  read -r up _ < /proc/uptime
  echo $(( ${up%.*} * 1000 + 1${up#*.} * 10 - 1000 ))
}

# ~1 s of shell arithmetic per loop on a 2-3 GHz core; a separate busybox
# process each, so the scheduler can spread them over the CPUs.
iterations=1000000
start=$(now_ms)
i=0
while [ "$i" -lt "$cpus" ]; do
  busybox sh -c "n=0; while [ \$n -lt $iterations ]; do n=\$((n + 1)); done" &
  i=$((i + 1))
done
wait
elapsed=$(( $(now_ms) - start ))
echo "nodevisor-init: $cpus busy loops of $iterations iterations done in $elapsed ms"

# -f: no init system to ask; the kernel powers off through ACPI.
poweroff -f
