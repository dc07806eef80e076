#!/usr/bin/env bash
# Build the broker pilotlab ships, Mosquitto 2.1.2 with its persist-sqlite plugin, once, and print
# the broker binary's path on stdout (everything else goes to stderr).
#
#   bash scripts/build-mosquitto.sh            # into ${XDG_CACHE_HOME:-~/.cache}/pilotlab/mosquitto-2.1.2
#   bash scripts/build-mosquitto.sh PREFIX     # into PREFIX (the broker image uses /usr/local)
#
# Why 2.1 and not the distribution's 2.0: deploy/mosquitto/README.md (2.0 forgets shared
# subscriptions across a restart, and messages published before ingest resubscribes are lost).
# Source: Debian's copy of the upstream release tarball, checked against its SHA-256. A second run
# finds the finished build and only prints the path (about 20 s to build on 2 cores).
# Build dependencies (Debian/Ubuntu): cmake gcc make curl libssl-dev libcjson-dev libsqlite3-dev libargon2-dev
set -euo pipefail

VERSION=2.1.2
SHA256=a8e37cc4c1d4141e56c5a8729c5fa36b1f0b1ca95378a12131d68f0509de122a
URL="http://deb.debian.org/debian/pool/main/m/mosquitto/mosquitto_${VERSION}.orig.tar.gz"
APT_PACKAGES="cmake gcc make curl libssl-dev libcjson-dev libsqlite3-dev libargon2-dev"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/pilotlab"
prefix="${1:-$cache/mosquitto-$VERSION}"
prefix="$(mkdir -p "$prefix" && cd "$prefix" && pwd)"
binary="$prefix/sbin/mosquitto"
stamp="$prefix/.built-by-pilotlab"  # written last: a build that stopped half-way is redone

say() { echo "build-mosquitto: $*" >&2; }

built() { [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$VERSION $SHA256" ] && [ -x "$binary" ]; }

if built; then
    echo "$binary"
    exit 0
fi

missing=()
for tool in cmake make cc curl sha256sum tar; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if command -v cc >/dev/null 2>&1; then
    for header in openssl/ssl.h cjson/cJSON.h sqlite3.h argon2.h; do
        echo "#include <$header>" | cc -E -x c - >/dev/null 2>&1 || missing+=("$header")
    done
fi
if [ ${#missing[@]} -gt 0 ]; then
    say "missing build dependencies: ${missing[*]} (Debian/Ubuntu: apt-get install -y $APT_PACKAGES)"
    exit 2
fi

mkdir -p "$cache"
exec 9>"$cache/mosquitto-$VERSION.lock"
flock 9  # two runs at once: the second waits and then finds the build done
if built; then
    echo "$binary"
    exit 0
fi

tarball="$cache/mosquitto_${VERSION}.orig.tar.gz"
if ! echo "$SHA256  $tarball" | sha256sum -c --status - 2>/dev/null; then
    say "downloading $URL"
    curl -fsSL --retry 3 -o "$tarball.part" "$URL"
    if ! echo "$SHA256  $tarball.part" | sha256sum -c --status -; then
        say "$URL does not have the expected SHA-256 $SHA256; refusing to build it"
        rm -f "$tarball.part"
        exit 2
    fi
    mv "$tarball.part" "$tarball"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/pilotlab-mosquitto-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$cache/mosquitto-$VERSION-build.log"
say "building Mosquitto $VERSION into $prefix (log: $log)"
tar -xzf "$tarball" -C "$work" --strip-components=1
rm -f "$stamp"  # never delete the prefix itself: it may be /usr/local
# Only the broker, its plugins and the small tools (mosquitto_ctrl for dynamic security, the
# clients for checks); no websockets, HTTP API or docs. The rpath lets the tools find
# libmosquitto here without LD_LIBRARY_PATH.
if ! (cd "$work" && mkdir build && cd build &&
      cmake .. -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
          -DCMAKE_INSTALL_RPATH="$prefix/lib" -DWITH_DOCS=OFF -DWITH_TESTS=OFF -DWITH_WEBSOCKETS=OFF \
          -DWITH_HTTP_API=OFF -DWITH_CTRL_SHELL=OFF -DWITH_SRV=OFF -DWITH_LTO=OFF &&
      make -j"$(nproc 2>/dev/null || echo 2)" && make install) >"$log" 2>&1; then
    say "build failed; last lines of $log:"
    tail -n 20 "$log" >&2
    exit 1
fi
[ -f "$prefix/lib/mosquitto_persist_sqlite.so" ] || { say "the build has no persist-sqlite plugin (see $log)"; exit 1; }
echo "$VERSION $SHA256" >"$stamp"
say "done"
echo "$binary"
