#!/bin/sh
# Build the ktrace container image (default tag ktrace:local) from Debian packages and this
# repository.  As root, on a Debian or Ubuntu host with docker.
#
#   sh deploy/build-image.sh                 # -> ktrace:local
#   KTRACE_IMAGE=registry.example/ktrace:0.1 sh deploy/build-image.sh
#   KTRACE_IF_CHANGED=1 sh deploy/build-image.sh  # nothing to do when the image has these sources
#
# Works without a container registry and without network access from inside the build:
#
# 1. Base.  debian:12 if docker has it or can pull it.  Otherwise (no registry reachable) a
#    Debian 12 root filesystem is made on the host with debootstrap, from the Debian mirror that
#    the host's apt uses, with every package ktrace needs already in it, and `docker import`ed as
#    ktrace-base:bookworm.  That base is reused by later builds (KTRACE_REBUILD_BASE=1 remakes it).
# 2. Python packages.  Wheels for ktrace's dependencies and its build requirements are downloaded
#    on the host with pip, for the image's Python (3.11) and platform, whatever the host's Python.
# 3. `docker build` of a small Dockerfile written into a temporary context: the apt packages
#    (a no-op on the debootstrapped base), a venv with ktrace built from source against the wheels
#    (pip --no-index), Debian's bcc module linked into it, and the `ktrace` wrapper as entrypoint.
#    On the debootstrapped base the build runs with --network none: it needs nothing from outside.
#
# The image keeps its own kernel headers (Debian's linux-headers) in /opt/ktrace/usr-src: the host's
# /usr/src and /lib/modules are mounted over the image's when it runs, and the wrapper falls back to
# the image's tree (BCC_KERNEL_SOURCE) only when the host has none for its kernel.
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
IMAGE=${KTRACE_IMAGE:-ktrace:local}
BASE=${KTRACE_BASE_IMAGE:-debian:12}
SUITE=bookworm
PYVER=3.11  # Debian 12's python3
LOCAL_BASE=ktrace-base:$SUITE
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
case "$ARCH" in
    amd64) PLAT=x86_64 ;;
    arm64) PLAT=aarch64 ;;
    *) PLAT=$ARCH ;;
esac
# What the image needs from Debian: Python and a compiler for the Cython extensions, bcc, kernel
# headers, and mount (the wrapper mounts tracefs when the host's is not visible).
APT_PACKAGES="python3 python3-venv python3-dev gcc libc6-dev python3-bpfcc bpfcc-tools
linux-headers-$ARCH ca-certificates procps iproute2 mount"

say() { printf 'build-image: %s\n' "$*"; }
warn() { printf 'build-image: WARNING: %s\n' "$*" >&2; }
die() { printf 'build-image: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and docker need it)"
docker info >/dev/null 2>&1 || die "docker is not running (dockerd --bridge=none & starts it)"
command -v python3 >/dev/null || die "python3 is needed on the host (for pip download)"

WORK=$(mktemp -d /var/tmp/ktrace-build.XXXXXX)
cleanup() {
    # a debootstrap interrupted midway can leave proc/sys mounted in the root filesystem
    for m in proc sys dev/pts dev; do umount "$WORK/rootfs/$m" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# --- 1. base ---------------------------------------------------------------------------------------
apt_site() {
    # The mirror for suite $1, component main, exactly as the host's apt has it configured.
    apt-get indextargets --format '$(SITE) $(RELEASE) $(COMPONENT)' 2>/dev/null \
        | awk -v s="$1" '$2 == s && $3 == "main" { print $1; exit }'
}

make_local_base() {
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap on the host"
        export DEBIAN_FRONTEND=noninteractive
        if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap; } \
            >"$WORK/apt.log" 2>&1; then
            tail -n 20 "$WORK/apt.log" >&2
            die "cannot install debootstrap"
        fi
    fi
    mirror=$(apt_site "$SUITE")
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    security=$(apt_site "$SUITE-security")
    [ -n "$security" ] || security=http://deb.debian.org/debian-security
    rootfs="$WORK/rootfs"
    include=$(echo $APT_PACKAGES | tr ' ' ',')
    say "debootstrap $SUITE from $mirror (with: $include); takes a few minutes"
    if ! debootstrap --variant=minbase --include="$include" "$SUITE" "$rootfs" "$mirror" \
        >"$WORK/debootstrap.log" 2>&1; then
        tail -n 30 "$WORK/debootstrap.log" >&2
        die "debootstrap failed (log above)"
    fi
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $security $SUITE-security main
EOF
    # Updates too, through the host's network: a chroot, not a container.
    if chroot "$rootfs" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade' \
        >"$WORK/upgrade.log" 2>&1; then
        say "base: updates applied"
    else
        warn "base: could not apply updates (see below); the image has $SUITE's release versions"
        tail -n 5 "$WORK/upgrade.log" >&2
    fi
    for m in proc sys dev/pts dev; do umount "$rootfs/$m" 2>/dev/null || true; done
    prepare_rootfs "$rootfs"
    say "importing the root filesystem as $LOCAL_BASE"
    # (no -q: docker 20.10, Debian 12's, does not have it)
    tar -C "$rootfs" --numeric-owner -cf - . \
        | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$LOCAL_BASE" >/dev/null
}

prepare_rootfs() {
    r=$1
    chroot "$r" apt-get clean
    rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/log/*.log "$r"/tmp/*
    # The image's kernel headers, out of the way of the host's /usr/src mounted at run time.
    mkdir -p "$r/opt/ktrace"
    mv "$r/usr/src" "$r/opt/ktrace/usr-src"
    mkdir "$r/usr/src"
}

if [ "${KTRACE_REBUILD_BASE:-0}" != 1 ] && docker image inspect "$BASE" >/dev/null 2>&1; then
    FROM=$BASE NET=default
    say "base: $BASE (already present)"
elif [ "${KTRACE_REBUILD_BASE:-0}" != 1 ] && timeout 120 docker pull -q "$BASE" >/dev/null 2>&1; then
    FROM=$BASE NET=default
    say "base: $BASE (pulled)"
else
    if [ "${KTRACE_REBUILD_BASE:-0}" = 1 ] || ! docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
        say "base: no registry image $BASE; making $LOCAL_BASE with debootstrap"
        make_local_base
    else
        say "base: $LOCAL_BASE (made earlier by debootstrap; KTRACE_REBUILD_BASE=1 remakes it)"
    fi
    # Everything is in the base already: the build needs no network at all.
    FROM=$LOCAL_BASE NET=none
fi

CTX="$WORK/context"
# --- 2. sources, Dockerfile, wrapper -------------------------------------------------------------------
mkdir -p "$CTX/src"
tar -C "$ROOT" -cf - \
    --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude='*.so' --exclude=./captures --exclude=./tests --exclude=./bench \
    --exclude=./deploy . | tar -C "$CTX/src" -xf -

cat >"$CTX/ktrace" <<'EOF'
#!/bin/sh
# ktrace in its container: find the host, the kernel headers and tracefs, then run it.
set -e
# The host's filesystem, where the debug pod and debug-container.sh mount it.
if [ -z "${KTRACE_HOST_ROOT+set}" ] && [ -d /host/proc/1 ]; then
    export KTRACE_HOST_ROOT=/host
fi
# bcc compiles against /lib/modules/$(uname -r)/build (the host's, mounted).  A host without
# headers for its kernel gets the image's Debian tree: the probe reads no kernel struct whose
# layout differs between versions.
if [ -z "${BCC_KERNEL_SOURCE:-}" ] && [ ! -e "/lib/modules/$(uname -r)/build" ]; then
    tree=$(ls -d /opt/ktrace/usr-src/linux-headers-*-"$(dpkg --print-architecture)" 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$tree" ]; then
        export BCC_KERNEL_SOURCE="$tree"
    fi
fi
# Tracepoints are read from tracefs; a fresh /sys in a container may not show it.
if [ ! -d /sys/kernel/tracing/events ] && [ ! -d /sys/kernel/debug/tracing/events ]; then
    mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
fi
exec /opt/ktrace/venv/bin/ktrace "$@"
EOF
chmod 755 "$CTX/ktrace"

cat >"$CTX/Dockerfile" <<EOF
# Written by deploy/build-image.sh; see there.
FROM $FROM
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
# A no-op on the debootstrapped base, which has them all; debian:12 gets them here.
RUN set -e; missing=""; \\
    for p in $(echo $APT_PACKAGES); do dpkg -s "\$p" >/dev/null 2>&1 || missing="\$missing \$p"; done; \\
    if [ -n "\$missing" ]; then \\
        apt-get update -qq && apt-get install -y -qq --no-install-recommends \$missing && \\
        apt-get clean && rm -rf /var/lib/apt/lists/*; \\
    fi; \\
    if [ ! -d /opt/ktrace/usr-src ]; then \\
        mkdir -p /opt/ktrace && mv /usr/src /opt/ktrace/usr-src && mkdir /usr/src; \\
    fi
COPY wheels /opt/ktrace/wheels
COPY src /opt/ktrace/src
RUN set -e; \\
    /usr/bin/python3 -m venv /opt/ktrace/venv; \\
    /opt/ktrace/venv/bin/pip install -q --no-index --find-links /opt/ktrace/wheels setuptools Cython wheel; \\
    cd /opt/ktrace/src && /opt/ktrace/venv/bin/pip install -q --no-index --find-links /opt/ktrace/wheels \\
        --no-build-isolation . ; \\
    site=\$(/opt/ktrace/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \\
    ln -s /usr/lib/python3/dist-packages/bcc "\$site/bcc"; \\
    /opt/ktrace/venv/bin/python -c 'import bcc, tracer'; \\
    cd / && rm -rf /opt/ktrace/src /opt/ktrace/wheels /root/.cache
COPY ktrace /usr/local/bin/ktrace
WORKDIR /captures
ENTRYPOINT ["/usr/local/bin/ktrace"]
EOF

# What the image is made of: the sources, the wrapper, the Dockerfile (which names the base) and the
# Python dependencies.  With KTRACE_IF_CHANGED=1 an image made of the same is kept as it is.
DEPS_LIST=$(python3 -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb")); print(" ".join(d["build-system"]["requires"] + d["project"].get("dependencies", [])))')
SOURCE_HASH=$( { (cd "$CTX" && find src ktrace Dockerfile -type f -print0 | sort -z | xargs -0 sha256sum); \
    echo "$DEPS_LIST"; } | sha256sum | cut -c1-64)
if [ "${KTRACE_IF_CHANGED:-0}" = 1 ] \
    && [ "$(docker image inspect -f '{{index .Config.Labels "org.ktrace.source"}}' "$IMAGE" 2>/dev/null)" = "$SOURCE_HASH" ]; then
    say "$IMAGE is up to date (same sources, base and dependencies)"
    exit 0
fi

# --- 3. wheels ---------------------------------------------------------------------------------------
mkdir -p "$CTX/wheels"
DEPS=$(python3 - <<'EOF'
import tomllib
with open("pyproject.toml", "rb") as f:
    doc = tomllib.load(f)
print(" ".join(doc["build-system"]["requires"] + doc["project"].get("dependencies", []) + ["wheel"]))
EOF
)
say "wheels for python $PYVER/$PLAT: $DEPS"
python3 -m venv "$WORK/pipvenv" || die "python3 -m venv failed (apt-get install python3-venv)"
# shellcheck disable=SC2086
if ! "$WORK/pipvenv/bin/pip" download -q --dest "$CTX/wheels" --only-binary=:all: \
    --python-version "$PYVER" --implementation cp --abi "cp$(echo $PYVER | tr -d .)" --abi abi3 --abi none \
    --platform "manylinux2014_$PLAT" --platform "manylinux_2_17_$PLAT" --platform "manylinux_2_28_$PLAT" \
    --platform any $DEPS >"$WORK/pip.log" 2>&1; then
    grep -v 'is ignored: it is neither a file nor a directory' "$WORK/pip.log" | tail -n 20 >&2
    die "pip download failed (is PyPI reachable from the host?)"
fi

say "docker build -t $IMAGE (from $FROM, network: $NET)"
if ! docker build --network "$NET" --label "org.ktrace.source=$SOURCE_HASH" -t "$IMAGE" "$CTX" >"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log" >&2
    die "docker build failed (log above)"
fi

# --- 4. smoke test: the package and bcc import inside the image ---------------------------------------
version=$(docker run --rm --network none --entrypoint /opt/ktrace/venv/bin/python "$IMAGE" \
    -c 'import bcc, tracer; print(tracer.__version__)') || die "the image does not import tracer and bcc"
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
say "built $IMAGE: ktrace $version, $((size / 1000000)) MB"
