#!/bin/sh
# Run ktrace from its image on this machine, the way the debug pod runs it on a node.
#
#   sh deploy/debug-container.sh -pc -c topconns
#   sh deploy/debug-container.sh -w /captures/node.kcap -M 30     # the file lands in ./captures
#   KTRACE_IMAGE=registry.example/ktrace:0.1 sh deploy/debug-container.sh -l
#
# The image is built by deploy/build-image.sh.  The container is in the host's PID and network
# namespaces, with the host's filesystem mounted where ktrace looks for it (KTRACE_HOST_ROOT=/host),
# and holds only the capabilities ktrace needs (deploy/README.md says why each):
#
#   SYS_ADMIN        load the probe and open its tracepoints: docker 20.10 knows no BPF and PERFMON,
#                    which are enough where docker knows them: KTRACE_CAPS="BPF PERFMON SYS_PTRACE
#                    DAC_READ_SEARCH"
#   SYS_PTRACE       other processes' /proc/PID/fd links and pidfd_getfd: fd names, socket addresses
#   DAC_READ_SEARCH  other users' /proc/PID/fd directories
#
# Docker's default seccomp profile stays on (it allows bpf() and perf_event_open() to a container
# with SYS_ADMIN).  AppArmor, where the host has it, is off for this container: docker-default lets
# ptrace reach only processes of its own profile, so no host process's fds would be readable.
# KTRACE_PRIVILEGED=1 runs it --privileged instead, for a host where these are not enough (see
# `docker run ... ktrace:local doctor`).  The mounts are the debug pod's
# (deploy/k8s/debug-pod.yaml); a test keeps the two lists the same:
#
#   host            container              why
#   /proc           /host/proc             threads, fds, cgroups of every process
#   /etc            /host/etc              user and group names (passwd, group)
#   /run            /host/run              runtime sockets and OCI state: docker.sock, containerd,
#                                          crio, containers/storage, podman (rootless: /run/user)
#   /sys/fs/cgroup  /host/sys/fs/cgroup    cgroup version, cgroup ids
#   /sys/kernel/debug  /sys/kernel/debug   tracefs under debugfs, where the host mounts it there
#   /sys/kernel/tracing  /sys/kernel/tracing  tracefs (tracepoint ids and formats): a container
#                                          without SYS_ADMIN cannot mount its own
#   /lib/modules    /lib/modules           kernel headers link (.../build) for bcc
#   /usr/src        /usr/src               the headers it points to
#   ./captures      /captures              where -w writes (the working directory)
#
# All host mounts are read-only except tracefs.  /run is one mount rather than one per socket:
# it covers every runtime whichever this machine has, and never makes docker create a directory
# named docker.sock where there is no docker.  No mount propagation (rslave): it fails where the
# host's / is not a shared mount, and the files ktrace reads under /run (sockets, OCI bundles) are
# on /run's own tmpfs, visible without it.
set -eu

IMAGE=${KTRACE_IMAGE:-ktrace:local}
CAPTURES=${KTRACE_CAPTURES:-$(pwd)/captures}
CAPS=${KTRACE_CAPS:-SYS_ADMIN SYS_PTRACE DAC_READ_SEARCH}
mkdir -p "$CAPTURES"

PRIVS="--cap-drop ALL"
for cap in $CAPS; do
    PRIVS="$PRIVS --cap-add $cap"
done
PRIVS="$PRIVS --security-opt apparmor=unconfined"
if [ "${KTRACE_PRIVILEGED:-0}" = 1 ]; then
    PRIVS="--privileged"
fi

# -t only when there is a terminal: chisels draw tables then, and pipes stay clean otherwise.
TTY=""
[ -t 0 ] && [ -t 1 ] && TTY="-t"

# Ctrl-C: docker forwards the SIGINT to ktrace, which closes its capture and exits; --rm then
# removes the container.
# shellcheck disable=SC2086
exec docker run --rm -i $TTY \
    --name "ktrace-debug-$$" \
    $PRIVS \
    --pid host \
    --network host \
    -e KTRACE_HOST_ROOT=/host \
    -v /proc:/host/proc:ro \
    -v /etc:/host/etc:ro \
    -v /run:/host/run:ro \
    -v /sys/fs/cgroup:/host/sys/fs/cgroup:ro \
    -v /sys/kernel/debug:/sys/kernel/debug \
    -v /sys/kernel/tracing:/sys/kernel/tracing:ro \
    -v /lib/modules:/lib/modules:ro \
    -v /usr/src:/usr/src:ro \
    -v "$CAPTURES":/captures \
    "$IMAGE" "$@"
