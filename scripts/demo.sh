#!/bin/sh
# Show ktrace at work on a Debian 12 machine, as root:
#
#   sh scripts/demo.sh [ktrace arguments...]
#
# Sets the machine up (scripts/setup.sh), then traces the node live for 3 seconds.  Where live
# tracing cannot work (no root, no BPF, no headers...: `ktrace doctor` says which), it reads the
# first capture in captures/ instead.  Extra arguments go to ktrace: a filter, -c CHISEL, -p FORMAT...
set -eu

cd "$(dirname "$0")/.."
sh scripts/setup.sh >&2

KTRACE=.venv/bin/ktrace
if "$KTRACE" doctor --quiet; then
    exec "$KTRACE" -M 3 "$@"
fi

capture=""
for f in captures/*.kcap; do
    if [ -e "$f" ]; then
        capture=$f
        break
    fi
done
{
    echo "demo: live tracing is unavailable here:"
    # The MISSING lines of `ktrace doctor`, each with the fix under it.
    "$KTRACE" doctor 2>&1 | while IFS= read -r line; do
        case $line in
            MISSING*) show=1 ;;
            " "*) ;;
            *) show=0 ;;
        esac
        if [ "${show:-0}" = 1 ]; then printf '  %s\n' "$line"; fi
    done
} >&2
if [ -z "$capture" ]; then
    echo "demo: and there is no capture in captures/ to read instead" >&2
    exit 1
fi
echo "demo: reading $capture instead" >&2
exec "$KTRACE" -r "$capture" "$@"
