#!/bin/sh
# Set up a Debian 12 machine, fresh or already done, for running and testing ktrace.  As root.
#
#   sh scripts/setup.sh
#
# Idempotent and quick when everything is in place: each step checks first and acts only on what
# is missing.  Steps: Debian packages (the packaged prometheus service left off); kernel headers link; tracefs; the .venv with ktrace installed
# editable (its Cython extensions built in place); Debian's bcc exposed in the venv; docker running;
# the ktrace-busybox:latest image for the container tests; the compiled probe cached.
#
# chromium (with chromium-driver) is the browser the inspection page's tests drive headless
# through playwright (its own browser download cannot be used: Debian's is launched by path).
#
# Uses only what a minimal Debian 12 has before the first step (sh, coreutils, grep, sed, dpkg,
# apt-get, mount); everything else is installed by the first step before it is used.
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
IMAGE=${KTRACE_IMAGE:-ktrace-busybox:latest}
ARCH=$(dpkg --print-architecture)

say() { printf 'setup: %s\n' "$*"; }
warn() { printf 'setup: WARNING: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get, /lib/modules, tracefs and docker need it)"

# --- 1. Debian packages -------------------------------------------------------------------------
PACKAGES="python3 python3-venv python3-dev gcc libc6-dev python3-bpfcc bpfcc-tools
linux-headers-$ARCH strace bpftrace sysdig nginx-light wrk busybox-static docker.io procps
iproute2 ca-certificates tmux chromium chromium-driver prometheus debootstrap"

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    say "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # No recommends: sysdig would pull sysdig-dkms and a module build; ktrace needs none of them.
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
else
    say "Debian packages: all installed"
fi
# Debian's prometheus is for the metrics tests, which start their own on a free port: the packaged
# service (and its :9090) stays off.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ] \
    && systemctl is-enabled --quiet prometheus 2>/dev/null; then
    say "prometheus: disabling the packaged service (tests run their own)"
    systemctl disable --now --quiet prometheus || warn "cannot disable the prometheus service"
fi

# --- 2. kernel headers --------------------------------------------------------------------------
# bcc compiles the probe against /lib/modules/$(uname -r)/build.  When the running kernel is not a
# Debian one (no headers package for it), link the newest Debian headers tree instead: the probe
# reads tracepoint arguments, BPF helpers and user memory only, no kernel struct whose layout
# differs between versions, so another version's tree compiles it correctly.
KREL=$(uname -r)
MODDIR=/lib/modules/$KREL
if [ -n "${BCC_KERNEL_SOURCE:-}" ]; then
    say "kernel headers: BCC_KERNEL_SOURCE=$BCC_KERNEL_SOURCE (left as is)"
elif [ -e "$MODDIR/build" ]; then
    say "kernel headers: $MODDIR/build -> $(readlink -f "$MODDIR/build")"
else
    tree=$(ls -d /usr/src/linux-headers-*-"$ARCH" 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$tree" ]; then
        warn "no /usr/src/linux-headers-*-$ARCH tree; live tracing will not compile"
    else
        say "kernel headers: linking $MODDIR/build -> $tree (kernel $KREL has no headers package)"
        if mkdir -p "$MODDIR" && ln -sfn "$tree" "$MODDIR/build"; then
            common=${tree%-"$ARCH"}-common
            if [ -d "$common" ] && [ ! -e "$MODDIR/source" ]; then
                ln -sfn "$common" "$MODDIR/source"
            fi
        else
            warn "cannot write $MODDIR; set BCC_KERNEL_SOURCE=$tree instead"
        fi
    fi
fi

# --- 3. tracefs ---------------------------------------------------------------------------------
# Tracepoint ids and formats are read from tracefs; some machines boot without it mounted.
if [ -d /sys/kernel/tracing/events/raw_syscalls ] || [ -d /sys/kernel/debug/tracing/events/raw_syscalls ]
then
    say "tracefs: mounted"
elif mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null; then
    say "tracefs: mounted at /sys/kernel/tracing"
else
    warn "cannot mount tracefs at /sys/kernel/tracing; live tracing will not work"
fi

# --- 4. the venv --------------------------------------------------------------------------------
# Debian's python3 on purpose: Debian's bcc (python3-bpfcc) is built for it.  No system site
# packages: only the bcc module is exposed, by a link.  PyPI's "bcc" is an unrelated project.
if [ -x "$VENV/bin/python" ] && grep -qx 'home = /usr/bin' "$VENV/pyvenv.cfg" 2>/dev/null \
    && grep -qx 'include-system-site-packages = false' "$VENV/pyvenv.cfg"; then
    say "venv: $VENV"
else
    say "venv: creating $VENV with /usr/bin/python3"
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
fi
[ -f "$VENV/.gitignore" ] || echo '*' > "$VENV/.gitignore"

SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
BCC_DIR=/usr/lib/python3/dist-packages/bcc
if [ -d "$SITE/bcc" ] && [ ! -L "$SITE/bcc" ]; then
    warn "removing a pip-installed 'bcc' from the venv (PyPI's bcc is not the BPF compiler collection)"
    "$VENV/bin/pip" uninstall -q -y bcc || true
    rm -rf "$SITE/bcc"
fi
if [ "$(readlink "$SITE/bcc" 2>/dev/null || true)" != "$BCC_DIR" ]; then
    say "venv: linking Debian's bcc module ($BCC_DIR)"
    ln -sfn "$BCC_DIR" "$SITE/bcc"
fi

# --- 5. ktrace, editable, with its Cython extensions ---------------------------------------------
# Reinstall when the packaging or the Cython sources change, or when a built module is missing.
# The build requirements live in the venv (--no-build-isolation) so a rebuild needs no download
# and `python setup.py build_ext --inplace` works too.
stamp_file="$VENV/.ktrace-build-stamp"
stamp=$(cat pyproject.toml setup.py ext/* 2>/dev/null | sha256sum | cut -d' ' -f1)
need_install=""
[ "$(cat "$stamp_file" 2>/dev/null || true)" = "$stamp" ] || need_install="sources changed"
for pyx in ext/*.pyx; do
    [ -e "$pyx" ] || continue
    stem=$(basename "$pyx" .pyx)
    ls tracer/_ext/"$stem".*.so >/dev/null 2>&1 || need_install="tracer._ext.$stem not built"
done
"$VENV/bin/python" -c 'import tracer' 2>/dev/null || need_install="tracer not importable"
if [ -n "$need_install" ]; then
    say "installing ktrace editable into the venv ($need_install)"
    log="$VENV/pip-install.log"
    if "$VENV/bin/pip" install 'setuptools>=64' 'Cython>=3' wheel >"$log" 2>&1 \
        && "$VENV/bin/pip" install --no-build-isolation -e '.[test]' >>"$log" 2>&1; then
        echo "$stamp" > "$stamp_file"
    else
        grep -v 'is ignored: it is neither a file nor a directory' "$log" | tail -n 40 >&2
        die "pip install failed (full log: $log)"
    fi
else
    say "ktrace: installed, extensions up to date"
fi

# --- 6. docker ----------------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
    say "docker: running"
else
    pid=$(cat /var/run/docker.pid 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        say "docker: dockerd (pid $pid) is starting; waiting"
    else
        say "docker: starting dockerd --bridge=none (log: /var/log/ktrace-dockerd.log)"
        # setsid: the daemon outlives this script and its terminal.
        setsid dockerd --bridge=none >>/var/log/ktrace-dockerd.log 2>&1 </dev/null &
    fi
    i=0
    while ! docker info >/dev/null 2>&1 && [ $i -lt 30 ]; do
        sleep 1
        i=$((i + 1))
    done
    if docker info >/dev/null 2>&1; then
        say "docker: running"
    else
        warn "docker did not start within 30 s (see /var/log/ktrace-dockerd.log); docker tests will skip"
    fi
fi

# --- 7. the busybox image -----------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
    :
elif docker image inspect "$IMAGE" >/dev/null 2>&1; then
    say "image: $IMAGE present"
else
    say "image: building $IMAGE from busybox-static"
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root" "$rootfs/proc" "$rootfs/sys" \
        "$rootfs/dev"
    chmod 1777 "$rootfs/tmp"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
    echo 'root:x:0:' > "$rootfs/etc/group"
    tar -C "$rootfs" -cf - . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
    say "image: $IMAGE built"
fi

# --- 8. the probe cache -------------------------------------------------------------------------
# Compile the probe once for the default settings, so that ktrace's first start loads it instead of
# compiling it (about a second). Not fatal: where eBPF does not work, ktrace cannot trace anyway.
if out=$("$VENV/bin/ktrace" cache --warm 2>&1); then
    say "${out#ktrace: }"
else
    warn "probe cache not prepared: $(printf '%s\n' "$out" | tail -n 1)"
fi

say "done"
