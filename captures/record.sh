#!/bin/sh
# Re-record the sample captures in captures/ (README.md says what each holds), as root:
#
#   sh captures/record.sh            # all of them
#   sh captures/record.sh shell cpu  # some: webserver shell container cpu failing
#
# Each capture is recorded into a temporary directory and moved into captures/ only when complete,
# so a failed run leaves the old one in place. Needs: nginx (nginx-light), wrk, docker with the
# ktrace-busybox:latest image (sh scripts/setup.sh builds it), python3.
set -eu

cd "$(dirname "$0")/.."
KTRACE=${KTRACE:-.venv/bin/ktrace}
OUT=captures
# A fixed place, so the paths in the captures stay the same from one recording to the next.
TMP=/tmp/ktrace-sample
rm -rf "$TMP"
mkdir -m 755 "$TMP" # nginx's worker (nobody) serves files from here
KT=""
NGINX=""
CID=""

cleanup() {
    if [ -n "$KT" ]; then kill -INT "$KT" 2>/dev/null || true; wait "$KT" 2>/dev/null || true; fi
    if [ -n "$NGINX" ]; then kill "$NGINX" 2>/dev/null || true; wait "$NGINX" 2>/dev/null || true; fi
    if [ -n "$CID" ]; then docker rm -f "$CID" >/dev/null 2>&1 || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

die() {
    echo "record: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (ktrace loads a BPF probe)"
[ -x "$KTRACE" ] || die "$KTRACE is missing: sh scripts/setup.sh"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME KTRACE-ARGS...: ktrace -w TMP/NAME ARGS in the background, back once its probe runs.
start() {
    name=$1
    shift
    "$KTRACE" -w "$TMP/$name" "$@" 2>"$TMP/$name.err" &
    KT=$!
    i=0
    until grep -q "capturing" "$TMP/$name.err" 2>/dev/null; do
        kill -0 "$KT" 2>/dev/null || { cat "$TMP/$name.err" >&2; die "ktrace failed for $name"; }
        i=$((i + 1))
        [ "$i" -lt 600 ] || die "ktrace did not start for $name"
        sleep 0.1
    done
}

# stop NAME: end ktrace as Ctrl-C does, check the capture and put it in captures/.
stop() {
    name=$1
    sleep 0.5
    kill -INT "$KT"
    wait "$KT" || die "ktrace failed for $name: $(cat "$TMP/$name.err")"
    KT=""
    "$KTRACE" -r "$TMP/$name" -q 2>"$TMP/$name.check" || die "$name does not read back: $(cat "$TMP/$name.check")"
    [ ! -s "$TMP/$name.check" ] || die "$name reads back with notes: $(cat "$TMP/$name.check")"
    size=$(stat -c %s "$TMP/$name")
    [ "$size" -le 2000000 ] || die "$name is $size bytes, over 2 MB"
    mv "$TMP/$name" "$OUT/$name"
    chmod 644 "$OUT/$name"
    echo "record: $OUT/$name: $size bytes; $(tail -n 1 "$TMP/$name.err")"
}

# 1. A web server under load: nginx (1 worker) on 127.0.0.1, wrk with 2 connections, 3000 requests.
webserver() {
    port=$(free_port)
    n=$TMP/nginx
    mkdir -p "$n/www" "$n/logs"
    echo "<html><body><h1>hello from ktrace's sample capture</h1></body></html>" >"$n/www/index.html"
    cat >"$n/nginx.conf" <<EOF
worker_processes 1;
pid $n/nginx.pid;
error_log $n/logs/error.log;
events { worker_connections 64; }
http {
    access_log $n/logs/access.log;
    server { listen 127.0.0.1:$port; root $n/www; }
}
EOF
    nginx -p "$n" -c "$n/nginx.conf" -g "daemon off;" &
    NGINX=$!
    i=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -lt 100 ] || die "nginx did not start"
        sleep 0.1
    done
    # wrk stops after 3000 responses: the capture's size does not depend on the machine's speed.
    printf '%s\n' 'local n = 0' 'function response()' '    n = n + 1' \
        '    if n >= 3000 then wrk.thread:stop() end' 'end' >"$TMP/stop.lua"
    start 01-webserver.kcap -s 256 proc.name=nginx
    wrk -t1 -c2 -d10s -s "$TMP/stop.lua" "http://127.0.0.1:$port/index.html" >"$TMP/wrk.txt"
    stop 01-webserver.kcap
    kill "$NGINX"
    wait "$NGINX" || true
    NGINX=""
}

# 2. A shell session running commands, in its own session (the filter is its session id).
shell() {
    mkfifo "$TMP/go"
    setsid bash -c "read go <$TMP/go
cd /tmp
ls /
cat /etc/hostname
echo 'hello from ktrace' >/tmp/ktrace-sample.txt
grep -c root /etc/passwd
wc -l /etc/passwd /tmp/ktrace-sample.txt
cd /etc && ls -d ssh* 2>/dev/null || true
rm /tmp/ktrace-sample.txt
id -un
uname -sr" >/dev/null &
    sh_pid=$!
    start 02-shell.kcap -s 256 "proc.sid=$sh_pid"
    echo go >"$TMP/go"
    wait "$sh_pid"
    stop 02-shell.kcap
}

# 3. A container doing file and network work (busybox; no network but its own loopback).
container() {
    CID=$(docker create --network none --name "ktrace-sample-$$" ktrace-busybox:latest sh -c '
mkdir -p /www
echo "<h1>hello from a container</h1>" >/www/index.html
httpd -p 127.0.0.1:8080 -h /www
sleep 0.3
for i in 1 2 3; do wget -q -O - http://127.0.0.1:8080/ >/dev/null; done
wc -l /etc/passwd
ls -l /www
echo done >/tmp/done
cat /tmp/done')
    start 03-container.kcap -s 256 "container.id=$(echo "$CID" | cut -c1-12)"
    docker start -a "$CID" >/dev/null
    stop 03-container.kcap
    docker rm -f "$CID" >/dev/null
    CID=""
}

# 4. Processes burning CPU for 3 s (one all the time, one half the time): CPU samples (procinfo).
cpu() {
    mkfifo "$TMP/go-cpu"
    # ktburn is there before ktrace starts (in its /proc snapshot), waiting for the go.
    python3 -c "
import ctypes, sys, time
ctypes.CDLL(None).prctl(15, b'ktburn', 0, 0, 0)
open(sys.argv[1]).read()
end = time.time() + 3
while time.time() < end:
    pass
" "$TMP/go-cpu" &
    burn=$!
    start 04-cpu-burn.kcap "proc.name in (ktburn, kthalf)"
    python3 -c "
import ctypes, sys, time
ctypes.CDLL(None).prctl(15, b'kthalf', 0, 0, 0)
end = time.time() + 3
while time.time() < end:
    t = time.time() + 0.01
    while time.time() < t:
        pass
    time.sleep(0.01)
" &
    half=$!
    echo go >"$TMP/go-cpu"
    wait "$burn" "$half"
    stop 04-cpu-burn.kcap
}

# 5. A failing service: opens of missing files (ENOENT), connects to a closed port (ECONNREFUSED).
failing() {
    port=$(free_port)
    cp "$(command -v bash)" "$TMP/ktfail"
    start 05-failing-service.kcap -s 256 proc.name=ktfail
    "$TMP/ktfail" -c "
for i in 1 2 3 4 5; do
    [ -e /run/ktrace-sample.pid ] || echo 'no pid file' >&2
    { read -r conf </etc/ktrace-sample/service.conf; } 2>/dev/null || echo 'no config' >&2
    { : 3<>/dev/tcp/127.0.0.1/$port; } 2>/dev/null || echo 'connection refused, retrying' >&2
    sleep 0.2
done" 2>/dev/null
    stop 05-failing-service.kcap
}

all="webserver shell container cpu failing"
for what in ${*:-$all}; do
    case " $all " in
        *" $what "*) "$what" ;;
        *) die "unknown capture '$what' (one of: $all)" ;;
    esac
done
