#!/usr/bin/env bash
# Proves, without a Docker engine, that the Dockerfile's runtime stage (debian:bookworm-slim plus
# deploy/runtime-packages.txt) can run the binaries.
#
#   deploy/check_runtime_image.sh BINARY...                  library check (seconds, offline)
#   deploy/check_runtime_image.sh --rootfs DIR BINARY...     + real bookworm root (minutes, mirror)
#
# 1. Library check (always): every shared library each binary needs (ldd) must resolve, belong to a
#    Debian package (dpkg -S), and that package must be in the runtime list, a dependency apt pulls
#    in for it, or part of bookworm-slim's base (Essential / Priority: required, and their
#    dependencies). Libraries from no package fail: the image would not have them.
# 2. Root check (--rootfs DIR): debootstrap a minimal bookworm into DIR (reused while the package
#    list and install script are unchanged), run deploy/docker/install-runtime.sh in it -- the very
#    script the Dockerfile runs --, copy the binaries to /usr/local/bin and the model repository to
#    /models, check each binary's libraries resolve inside the root, and if octet-server is among
#    them start it like the image does (uid 10001, read-only root, tmpfs /tmp, loopback ports) and
#    require a SERVING health answer, a /metrics page, and a clean exit 0 on SIGTERM.
#    Needs root (chroot, mount namespaces), debootstrap and the Debian mirror.
#
# Options: --rootfs DIR   --models DIR (default deploy/models)   --list FILE (runtime package list)
# Environment: OCTET_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              OCTET_DEBIAN_SECURITY (default http://deb.debian.org/debian-security)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
list="$here/runtime-packages.txt"
models="$here/models"
rootfs=""
binaries=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rootfs) rootfs="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --list) list="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "check_runtime_image: unknown option $1" >&2; exit 2 ;;
    "") shift ;;  # empty arguments (unset CMake generator expressions) name nothing
    *) binaries+=("$1"); shift ;;
  esac
done
if [ "${#binaries[@]}" -eq 0 ]; then
  echo "usage: $0 [--rootfs DIR] [--models DIR] [--list FILE] BINARY..." >&2
  exit 2
fi
for b in "${binaries[@]}"; do
  if [ ! -x "$b" ]; then echo "check_runtime_image: $b is not an executable file" >&2; exit 2; fi
done
PY=/usr/bin/python3

# ---------------------------------------------------------------------------------------------
# 1. Library check against the host's dpkg database.
echo "== library check: ${binaries[*]}"
libs_file="$(mktemp)"
trap 'rm -f "$libs_file"' EXIT
fail=0
for b in "${binaries[@]}"; do
  out="$(ldd "$b" 2>&1)" || { echo "FAIL: ldd $b: $out"; fail=1; continue; }
  if grep -q 'not found' <<<"$out"; then
    echo "FAIL: $b has unresolved libraries:"; grep 'not found' <<<"$out"; fail=1
  fi
  # Lines look like "libx.so.1 => /lib/.../libx.so.1 (0x...)" or "/lib64/ld-linux... (0x...)".
  awk -v bin="$b" '$2 == "=>" && $3 ~ /^\// {print bin "\t" $1 "\t" $3}
                   $1 ~ /^\// {print bin "\t" $1 "\t" $1}' <<<"$out" >>"$libs_file"
done
[ "$fail" -eq 0 ] || exit 1

"$PY" - "$list" "$libs_file" <<'PYEOF'
import subprocess, sys

list_path, libs_path = sys.argv[1], sys.argv[2]

def read_list(path):
    pkgs = []
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if line:
            pkgs.append(line)
    return pkgs

def installed_db():
    """name -> dict(essential, priority, depends[list of alternatives], provides) from dpkg."""
    fmt = "${Package}\\t${Status}\\t${Essential}\\t${Priority}\\t${Pre-Depends}, ${Depends}\\t${Provides}\\n"
    out = subprocess.run(["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True,
                         check=True).stdout
    db, provides = {}, {}
    for line in out.splitlines():
        name, status, essential, priority, deps, prov = line.split("\t")
        if not status.endswith(" installed"):
            continue
        alts = []
        for clause in deps.split(","):
            clause = clause.strip()
            if clause:
                alts.append([a.strip().split(" ")[0].split(":")[0] for a in clause.split("|")])
        db[name] = {"essential": essential == "yes", "priority": priority, "deps": alts}
        for p in prov.split(","):
            p = p.strip().split(" ")[0]
            if p:
                provides.setdefault(p, []).append(name)
    return db, provides

def closure(roots, db, provides):
    """Packages apt would have installed for roots: Depends/Pre-Depends, recursively."""
    seen, why, stack = set(), {}, [(r, None) for r in roots]
    while stack:
        name, parent = stack.pop()
        candidates = [name] if name in db else provides.get(name, [])
        for real in candidates[:1]:
            if real in seen:
                continue
            seen.add(real)
            why[real] = parent
            for alts in db[real]["deps"]:
                # An alternative that is installed here is the one apt would pick.
                chosen = next((a for a in alts if a in db or a in provides), None)
                if chosen:
                    stack.append((chosen, real))
    return seen, why

listed = read_list(list_path)
db, provides = installed_db()
missing = [p for p in listed if p not in db]
if missing:
    print("FAIL: runtime packages not installed on this machine, so they cannot be checked "
          "(typo, or run deploy/setup.sh): " + " ".join(missing))
    sys.exit(1)
base = [n for n, d in db.items() if d["essential"] or d["priority"] == "required"]
base_set, _ = closure(base, db, provides)
runtime_set, why = closure(listed, db, provides)

def owners(paths):
    """path -> package for every path dpkg knows, in one dpkg call (each call reads the whole db).
    With merged /usr a library is registered under /lib or /usr/lib: ask for both spellings."""
    spellings = {}
    for p in paths:
        alt = p[4:] if p.startswith("/usr/") else "/usr" + p
        spellings[p] = p
        spellings[alt] = p
    r = subprocess.run(["dpkg-query", "-S"] + sorted(spellings), capture_output=True, text=True)
    found = {}
    for line in r.stdout.splitlines():
        pkgs, _, path = line.partition(": ")
        if path in spellings:
            found[spellings[path]] = pkgs.split(",")[0].split(":")[0].strip()
    return found

bad, used = [], set()
rows = {}
entries = [line.rstrip("\n").split("\t") for line in open(libs_path)]
owner = owners({path for _, _, path in entries})
for binary, soname, path in entries:
    pkg = owner.get(path)
    if pkg is None:
        bad.append(f"{binary}: {soname} ({path}) belongs to no Debian package; the image lacks it")
        continue
    if pkg in listed:
        reason = "listed"
        used.add(pkg)
    elif pkg in base_set:
        reason = "bookworm-slim base"
    elif pkg in runtime_set:
        chain, p = [], pkg
        while why.get(p):
            p = why[p]
            chain.append(p)
        reason = "dependency of " + " <- ".join(chain)
        used.add(chain[-1])
    else:
        bad.append(f"{binary}: {soname} comes from {pkg}, which is neither in {list_path} "
                   "nor pulled in by it nor in the base system")
        continue
    rows[(soname, pkg)] = reason
for (soname, pkg), reason in sorted(rows.items()):
    print(f"  ok  {soname:48s} {pkg:28s} {reason}")
unused = [p for p in listed if p not in used]
if unused:
    print("note: listed but not needed by these binaries (harmless, but check the list): "
          + " ".join(unused))
if bad:
    print("\n".join("FAIL: " + b for b in bad))
    sys.exit(1)
print(f"library check passed: {len(rows)} libraries, all provided by the runtime stage")
PYEOF

[ -n "$rootfs" ] || exit 0

# ---------------------------------------------------------------------------------------------
# 2. Root check in a debootstrapped bookworm.
if [ "$(id -u)" -ne 0 ]; then echo "check_runtime_image: --rootfs needs root" >&2; exit 1; fi
command -v debootstrap >/dev/null || { echo "check_runtime_image: install debootstrap" >&2; exit 1; }
mirror="${OCTET_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${OCTET_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"
install_script="$here/docker/install-runtime.sh"
stamp="$(cat "$list" "$install_script" | sha256sum | cut -d' ' -f1)"
mkdir -p "$(dirname "$rootfs")"
rootfs="$(cd "$(dirname "$rootfs")" && pwd)/$(basename "$rootfs")"

if [ "$(cat "$rootfs/.octet-runtime-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "== building runtime root in $rootfs (debootstrap minbase bookworm from $mirror)"
  rm -rf "$rootfs"
  # minbase = Essential + Priority: required + apt: what debian:bookworm-slim is made of.
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.debootstrap.log" 2>&1 || {
    echo "FAIL: debootstrap (log: $rootfs.debootstrap.log)"; tail -20 "$rootfs.debootstrap.log"
    exit 1; }
  # The same suites the bookworm-slim image's apt sources name.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  mkdir -p "$rootfs/tmp/octet-install"
  cp "$list" "$rootfs/tmp/octet-install/runtime-packages.txt"
  cp "$install_script" "$rootfs/tmp/octet-install/install-runtime.sh"
  echo "== running deploy/docker/install-runtime.sh inside the root (as the Dockerfile does)"
  chroot "$rootfs" sh /tmp/octet-install/install-runtime.sh \
    /tmp/octet-install/runtime-packages.txt 10001
  rm -rf "$rootfs/tmp/octet-install"
  echo "$stamp" >"$rootfs/.octet-runtime-stamp"
else
  echo "== reusing runtime root $rootfs (package list unchanged)"
fi

# Like the Dockerfile's COPY steps.
rm -rf "$rootfs/usr/local/bin/"* "$rootfs/models"
for b in "${binaries[@]}"; do install -m 0755 "$b" "$rootfs/usr/local/bin/"; done
cp -r "$models" "$rootfs/models"
chown -R 0:0 "$rootfs/models"

fail=0
for b in "${binaries[@]}"; do
  name="$(basename "$b")"
  out="$(chroot "$rootfs" /lib64/ld-linux-x86-64.so.2 --list "/usr/local/bin/$name" 2>&1)" || true
  if grep -q 'not found' <<<"$out" || ! grep -q '=>' <<<"$out"; then
    echo "FAIL: $name does not load in the runtime root:"; echo "$out"; fail=1
  else
    echo "  ok  $name: $(grep -c '=>' <<<"$out") libraries resolve inside the runtime root"
  fi
done
[ "$fail" -eq 0 ] || exit 1

server=""
for b in "${binaries[@]}"; do [ "$(basename "$b")" = octet-server ] && server=1; done
if [ -z "$server" ]; then
  echo "root check passed (octet-server not given, so no health check)"
  exit 0
fi

read -r grpc_port metrics_port < <("$PY" -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
log="$rootfs.server.log"
echo "== starting octet-server in the runtime root: uid 10001, read-only /, tmpfs /tmp," \
  "127.0.0.1:$grpc_port (gRPC) 127.0.0.1:$metrics_port (metrics)"
# A private mount namespace: the root is bind-mounted read-only with a tmpfs on /tmp, like
# `docker run --read-only --tmpfs /tmp`; the mounts vanish with the process. Each step execs the
# next, so $! is the server itself.
unshare --mount --propagation private sh -c '
  set -e
  r="$1"; shift
  mount --bind "$r" "$r"
  mount -o remount,bind,ro "$r"
  mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$r/tmp"
  mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
  exec chroot --userspec=10001:10001 "$r" /usr/bin/env -i \
    PATH=/usr/local/bin:/usr/bin:/bin HOME=/nonexistent TMPDIR=/tmp \
    OCTET_MODEL_REPOSITORY=/models OMP_WAIT_POLICY=PASSIVE "$@"
' sh "$rootfs" /usr/local/bin/octet-server --host=127.0.0.1 --grpc_port="$grpc_port" \
  --metrics_port="$metrics_port" --drain_grace_seconds=2 >"$log" 2>&1 &
pid=$!
cleanup_server() {
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$libs_file"
}
trap cleanup_server EXIT

if ! "$PY" "$here/grpc_health.py" "127.0.0.1:$grpc_port" --wait 60; then
  echo "FAIL: octet-server in the runtime root did not report SERVING; its log:"; cat "$log"
  exit 1
fi
metrics="$(curl -fsS "http://127.0.0.1:$metrics_port/metrics")" || {
  echo "FAIL: no /metrics from octet-server in the runtime root; its log:"; cat "$log"; exit 1; }
if ! grep -q '^octet_model_loaded' <<<"$metrics"; then
  echo "FAIL: /metrics has no octet_model_loaded series"; exit 1
fi
echo "  ok  health SERVING, /metrics served ($(grep -c '^octet_' <<<"$metrics") octet_ samples)"
kill -TERM "$pid"
rc=0
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  echo "FAIL: octet-server still running 10 s after SIGTERM (drain_grace_seconds=2)"; exit 1
fi
wait "$pid" || rc=$?
if [ "$rc" -ne 0 ]; then
  echo "FAIL: octet-server exited $rc after SIGTERM (expected 0); its log:"; cat "$log"; exit 1
fi
echo "root check passed: octet-server started in the runtime root, answered health, exited 0"
