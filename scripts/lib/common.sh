# Shared helpers for the project's scripts. Sourced, not executed.
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="$REPO_ROOT/infra/04-data/postgresql-cluster"
# Where generated state lives: secrets, the merged stack env, the cluster's data.
PGC_STATE_DIR="${PGC_STATE_DIR:-$REPO_ROOT/.data}"

# A second copy of the stack (PGC_STACK_INSTANCE=2): scripts/test runs half of
# the integration tests against it, beside the first. The SOP's container
# names are fixed, so one Docker engine holds one stack: the copy has an
# engine of its own (same machine, own socket, data root and containerd
# namespace), its own state directory (.data/stack2) and ports.
SECOND_DOCKER_HOST="unix:///run/pgc-docker2.sock"
if [ "${PGC_STACK_INSTANCE:-1}" = 2 ]; then
  export DOCKER_HOST="$SECOND_DOCKER_HOST"
  case "$PGC_STATE_DIR" in */stack2) ;; *) PGC_STATE_DIR="$PGC_STATE_DIR/stack2" ;; esac
  export PGC_STATE_DIR ETCD_CLIENT_PORT=22379 ETCD_PEER_PORT=22380 PG0_PORT=25432 PG1_PORT=25433 \
    PG2_PORT=25434 PG0_API_PORT=28008 PG1_API_PORT=28009 PG2_API_PORT=28010 WRITE_PORT=25000 \
    READ_PORT=25001 STATS_PORT=27000
fi

say()  { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33m!!\033[0m %s\n' "$*" >&2; }
die()  { printf '\033[1;31mxx\033[0m %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  is_root || die "need root to install Debian packages ($*); install them yourself or re-run as root"
  if [ ! -f /var/lib/apt/.pgc-updated ] || [ -n "$(find /var/lib/apt/.pgc-updated -mmin +720 2>/dev/null)" ]; then
    say "apt-get update"
    apt-get update -qq >/dev/null
    touch /var/lib/apt/.pgc-updated
  fi
  say "installing Debian packages: $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The Debian mirror this machine's apt uses (never hard-coded in the repo).
debian_mirror() {
  local suite="${1:-bookworm}" f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri="$(awk -v s="$suite" '
      /^[[:space:]]*$/ { if (u != "" && ok) { print u; exit } u=""; ok=0; next }
      /^URIs:/ { u=$2 }
      /^Suites:/ { for (i=2;i<=NF;i++) if ($i==s) ok=1 }
      END { if (u != "" && ok) print u }' "$f" | head -n1)"
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri="$(awk -v s="$suite" '$1=="deb" { for (i=2;i<=NF;i++) if ($i==s) { if ($2 ~ /^\[/) print $3; else print $2; exit } }' "$f" | head -n1)"
    [ -n "$uri" ] && { echo "$uri"; return 0; }
  done
  return 1
}

ensure_docker_installed() {
  command -v dockerd >/dev/null 2>&1 || apt_install docker.io
  command -v docker >/dev/null 2>&1 || apt_install docker.io
}

# Make sure a Docker engine answers. As root with none running: install
# Debian's docker.io if missing and start dockerd without a bridge network.
ensure_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  if [ "${PGC_STACK_INSTANCE:-1}" = 2 ]; then ensure_second_docker; return; fi
  if ! is_root; then
    die "no Docker engine is reachable. Start one (e.g. 'sudo dockerd --bridge=none &') or add yourself to the docker group, then re-run."
  fi
  ensure_docker_installed
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    say "starting dockerd (--bridge=none, log: /var/log/pgc-dockerd.log)"
    setsid dockerd --bridge=none --iptables=false --ip6tables=false \
      >/var/log/pgc-dockerd.log 2>&1 < /dev/null &
  fi
  wait_for_docker /var/log/pgc-dockerd.log
}

# The second stack's engine (PGC_STACK_INSTANCE=2), beside the first: no
# bridge network (the stack uses the host's), and a containerd namespace of
# its own in case both engines share one containerd.
ensure_second_docker() {
  is_root || die "the second stack needs a Docker engine of its own, which only root can start"
  ensure_docker_installed
  if ! { [ -f /run/pgc-docker2.pid ] && kill -0 "$(cat /run/pgc-docker2.pid)" 2>/dev/null; }; then
    say "starting a second dockerd for the second stack ($SECOND_DOCKER_HOST, log: /var/log/pgc-dockerd2.log)"
    setsid dockerd --host "$SECOND_DOCKER_HOST" --data-root /var/lib/pgc-docker2 --exec-root /run/pgc-docker2 \
      --pidfile /run/pgc-docker2.pid --bridge=none --iptables=false --ip6tables=false \
      --containerd-namespace pgc2 --containerd-plugins-namespace pgc2-plugins \
      >/var/log/pgc-dockerd2.log 2>&1 < /dev/null &
  fi
  wait_for_docker /var/log/pgc-dockerd2.log
}

# Wait up to 60 s for the engine (DOCKER_HOST's, or the default) to answer;
# `$1` is its daemon's log, shown if it does not.
wait_for_docker() {
  local i
  for i in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  tail -n 20 "$1" >&2 || true
  die "dockerd did not answer within 60 s (log above: $1)"
}

# docker compose v2 when present, else Debian's docker-compose v1.
compose_cmd() {
  if docker compose version >/dev/null 2>&1; then
    echo "docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then
    echo "docker-compose"
  else
    apt_install docker-compose >&2
    echo "docker-compose"
  fi
}

# Print a defaults file's KEY=value lines (comments and blank lines dropped),
# each value overridden by an environment variable of the same name, except
# COMPOSE_PROJECT_NAME: a stack's compose project is its own, and a script
# that sourced another stack's env file (scripts/test does) exports that one's.
merge_defaults() {
  local line key val
  while IFS= read -r line; do
    case "$line" in ''|\#*) continue ;; esac
    key="${line%%=*}"; val="${line#*=}"
    if [ "$key" != COMPOSE_PROJECT_NAME ] && [ -n "${!key+x}" ]; then val="${!key}"; fi
    echo "$key=$val"
  done < "$1"
}

# Export the PGC_* settings that point the console at the stack described by
# the generated stack env file (ports may have been overridden).
export_console_env() {
  local env_file="$1"
  set -a; # shellcheck disable=SC1090
  source "$env_file"; set +a
  export PGC_CLUSTER_NAME="$CLUSTER_NAME"
  export PGC_MEMBERS="pg-0=http://$BIND_ADDR:$PG0_API_PORT,pg-1=http://$BIND_ADDR:$PG1_API_PORT,pg-2=http://$BIND_ADDR:$PG2_API_PORT"
  export PGC_HAPROXY_STATS_CSV_URL="http://$BIND_ADDR:$STATS_PORT/;csv"
  export PGC_HAPROXY_STATS_PUBLIC_URL="${PGC_HAPROXY_STATS_PUBLIC_URL:-http://$BIND_ADDR:$STATS_PORT/}"
  export PGC_WRITE_ENDPOINT="$BIND_ADDR:$WRITE_PORT"
  export PGC_READ_ENDPOINT="$BIND_ADDR:$READ_PORT"
}

BASE_IMAGE_TAG="pgc-base:bookworm"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# std's sources in the toolchain (the rust-src component), which the WASM's
# release build compiles (scripts/lib/wasm-release.sh).
std_sources() { echo "$(rustc --print sysroot)/lib/rustlib/src/rust/library"; }

# Binaryen's wasm-opt, pinned. The npm package `binaryen` ships it as one
# self-contained Node.js script (Debian's binaryen 108 points wasm-bindgen's
# externref table export at the wrong table). scripts/build runs it on a
# release's WASM modules (docs/benchmarks.md, WASM); the builder image holds
# it (scripts/image), a host gets it from scripts/toolchain --release.
BINARYEN_VERSION="132.0.0"
HOST_WASM_OPT="${XDG_CACHE_HOME:-$HOME/.cache}/pg-console/binaryen-$BINARYEN_VERSION/wasm-opt"

# fetch_wasm_opt <file>: the pinned wasm-opt from the npm registry, to <file>.
fetch_wasm_opt() {
  local tmp
  command -v npm >/dev/null || apt_install npm
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack -q "binaryen@$BINARYEN_VERSION" >/dev/null) \
    || die "npm pack binaryen@$BINARYEN_VERSION failed"
  tar -xzf "$tmp"/binaryen-*.tgz -C "$tmp" package/bin/wasm-opt
  mkdir -p "$(dirname "$1")"
  mv "$tmp/package/bin/wasm-opt" "$1"; chmod +x "$1"
  rm -rf "$tmp"
}

# The path of the pinned wasm-opt, if this machine has it (on PATH in the
# builder image, in the cache on a host); fails if it has none.
pinned_wasm_opt() {
  local c
  for c in "$(command -v wasm-opt 2>/dev/null)" "$HOST_WASM_OPT"; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    "$c" --version 2>/dev/null | grep -q "(version_${BINARYEN_VERSION%%.*})" && { echo "$c"; return 0; }
  done
  return 1
}

# What the console image's dependency layers are built from (the Dockerfile,
# the manifests, Cargo.lock, the toolchain, the WASM's build options):
# scripts/image labels the image with it, so scripts/test can tell a build
# that only recompiles the console's own crates (minutes) from one that
# rebuilds every dependency.
console_image_deps_key() {
  { cat "$REPO_ROOT/Dockerfile" "$REPO_ROOT/Cargo.lock" "$REPO_ROOT"/Cargo.toml "$REPO_ROOT"/*/Cargo.toml "$REPO_ROOT/.cargo/config.toml" \
      "$REPO_ROOT"/tools/*/Cargo.toml "$REPO_ROOT/infra/build/rust/Dockerfile" "$REPO_ROOT/scripts/lib/wasm-release.sh"
    rustc --version; wasm-bindgen --version; echo "binaryen $BINARYEN_VERSION"; } | sha256sum | cut -c1-16
}

# The local Debian bookworm base image every image starts from (no registry
# can be reached): debootstrap from the machine's own Debian mirror, once.
ensure_base_image() {
  if image_exists "$BASE_IMAGE_TAG"; then return 0; fi
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  local mirror sec root
  mirror="$(debian_mirror bookworm)" || die "cannot find a Debian bookworm mirror in /etc/apt/sources.list*; set PGC_DEBIAN_MIRROR"
  mirror="${PGC_DEBIAN_MIRROR:-$mirror}"
  sec="$(debian_mirror bookworm-security || true)"
  root="$(mktemp -d /tmp/pgc-rootfs.XXXX)"
  say "creating base image $BASE_IMAGE_TAG with debootstrap (minbase bookworm from $mirror; ~1-2 min)"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 20 "$root.log" >&2; die "debootstrap failed (log above)"; }
  {
    echo "deb $mirror bookworm main"
    echo "deb $mirror bookworm-updates main"
    [ -n "$sec" ] && echo "deb $sec bookworm-security main"
  } > "$root/etc/apt/sources.list"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - "$BASE_IMAGE_TAG" >/dev/null
  rm -rf "$root" "$root.log"
}

