#!/bin/sh
# Run ktrace from its image on this machine, the way the debug pod runs it on a node.
#
#   sh deploy/debug-container.sh -pc -c topconns
#   sh deploy/debug-container.sh -w /captures/node.kcap -M 30     # the file lands in ./captures
#   KTRACE_IMAGE=registry.example/ktrace:0.1 sh deploy/debug-container.sh -l
#
# The image is built by deploy/build-image.sh.  The container is privileged (BPF, tracefs) and in
# the host's PID and network namespaces; the host's filesystem is mounted where ktrace looks for it
# (KTRACE_HOST_ROOT=/host).  The mounts are the debug pod's (deploy/k8s/debug-pod.yaml); a test
# keeps the two lists the same:
#
#   host            container              why
#   /proc           /host/proc             threads, fds, cgroups of every process
#   /etc            /host/etc              user and group names (passwd, group)
#   /run            /host/run              runtime sockets and OCI state: docker.sock, containerd,
#                                          crio, containers/storage, podman (rootless: /run/user)
#   /sys/fs/cgroup  /host/sys/fs/cgroup    cgroup version, cgroup ids
#   /sys/kernel/debug  /sys/kernel/debug   tracefs (bcc reads tracepoint formats there)
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
mkdir -p "$CAPTURES"

# -t only when there is a terminal: chisels draw tables then, and pipes stay clean otherwise.
TTY=""
[ -t 0 ] && [ -t 1 ] && TTY="-t"

# shellcheck disable=SC2086
exec docker run --rm -i $TTY \
    --name "ktrace-debug-$$" \
    --privileged \
    --pid host \
    --network host \
    -e KTRACE_HOST_ROOT=/host \
    -v /proc:/host/proc:ro \
    -v /etc:/host/etc:ro \
    -v /run:/host/run:ro \
    -v /sys/fs/cgroup:/host/sys/fs/cgroup:ro \
    -v /sys/kernel/debug:/sys/kernel/debug \
    -v /lib/modules:/lib/modules:ro \
    -v /usr/src:/usr/src:ro \
    -v "$CAPTURES":/captures \
    "$IMAGE" "$@"
