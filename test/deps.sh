#!/bin/sh
# Installs what the tests need and this machine lacks (Debian 12, as root):
# podman with runc (crun cannot run on these hosts' hybrid cgroups),
# busybox-static for the test image, Slurm and munge for the batch tests,
# and versitygw (Apache-2.0), the real S3
# server of the storage tests, built with `go install` into GOPATH/bin.
# Called by `make test`; idempotent.
set -eu
gobin="$(go env GOPATH)/bin"
if ! command -v versitygw >/dev/null 2>&1 && [ ! -x "$gobin/versitygw" ]; then
	echo "test/deps.sh: building versitygw into $gobin"
	GOBIN="$gobin" GOFLAGS= go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi
need=""
command -v podman >/dev/null 2>&1 || need="$need podman"
command -v runc >/dev/null 2>&1 || need="$need runc"
[ -x /bin/busybox ] || need="$need busybox-static"
# A single-node Slurm for the batch tests (plugins/batch/slurm/slurmtest starts it).
command -v sbatch >/dev/null 2>&1 || need="$need slurm-client"
[ -x /usr/sbin/slurmctld ] || need="$need slurmctld"
[ -x /usr/sbin/slurmd ] || need="$need slurmd"
[ -x /usr/sbin/munged ] || need="$need munge"
# Network namespaces for the compute-node tests.
command -v ip >/dev/null 2>&1 || need="$need iproute2"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "test/deps.sh: missing:$need (install them, or the tests that need them fail in CI and skip elsewhere)" >&2
	exit 0
fi
echo "test/deps.sh: installing$need"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $need >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $need >/dev/null; }
