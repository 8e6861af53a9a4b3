#!/bin/sh
# Builds localhost/busybox:test, a minimal image of Debian's busybox-static
# (no registry needed), and writes it to an OCI archive as well when given a path:
#   test/images/busybox.sh [ARCHIVE.tar]
set -eu
bb=$(command -v busybox || echo /bin/busybox)
[ -x "$bb" ] || { echo "busybox-static is not installed" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc"
cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'NAME="Pando test busybox"' > "$root/etc/os-release"
tar -C "$root" -c . | podman import --change 'ENV PATH=/bin' - localhost/busybox:test >/dev/null
if [ $# -gt 0 ]; then
	rm -f "$1"
	podman save --format oci-archive -o "$1" localhost/busybox:test
fi
