# shellcheck shell=bash
# tools/setup/lwip-source.sh - put Debian's lwIP source where Meson wants it.
# Sourced by tools/ferry.
#
# lwIP comes from Debian's `lwip` source package. subprojects/lwip.wrap names
# the upstream tarball (source_filename) and its sha256 (source_hash): the one
# place the expected checksum is kept. This step
#   1. finds the tarball in subprojects/packagecache/ with the right hash, or
#      fetches it: makes sure apt has a deb-src entry for Debian's archive
#      (writing /etc/apt/sources.list.d/ferry-deb-src.sources, derived from
#      the system's own Debian entries, if there is none), runs
#      `apt-get source --download-only lwip` in a temporary directory, checks
#      the hash and refuses a mismatch;
#   2. unpacks it into subprojects/lwip-2.1.3/ with Meson (which adds the
#      glue in subprojects/packagefiles/ and applies the diffs there), and
#      unpacks again whenever that glue changed since (Meson alone would keep
#      a stale copy).

FERRY_DEB_SRC_FILE=/etc/apt/sources.list.d/ferry-deb-src.sources

wrap_value() { # wrap_value KEY: a value from subprojects/lwip.wrap
    awk -F'=' -v key="$1" '
        { k = $1; gsub(/[ \t]/, "", k) }
        k == key { v = substr($0, index($0, "=") + 1); gsub(/^[ \t]+|[ \t\r]+$/, "", v); print v; exit }
    ' "$FERRY_ROOT/subprojects/lwip.wrap"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

apt_knows_lwip_source() {
    apt-cache showsrc lwip 2>/dev/null | grep -q '^Package: lwip$'
}

# Any enabled deb-src entry at all, in either sources format?
have_deb_src_entry() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && grep -qE '^[[:space:]]*deb-src[[:space:]]' "$f" && return 0
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && awk 'BEGIN { IGNORECASE = 1 }
            /^[ \t]*$/ { if (src && !off) found = 1; src = off = 0; next }
            tolower($0) ~ /^types:.*(^|[ \t:])deb-src([ \t]|$)/ { src = 1 }
            tolower($0) ~ /^enabled:[ \t]*no/ { off = 1 }
            END { if (src && !off) found = 1; exit !found }' "$f" && return 0
    done
    return 1
}

# Write ferry-deb-src.sources from the system's Debian "deb" entries.
write_deb_src_entry() {
    local entries=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        entries=$(awk -f "$FERRY_ROOT/tools/setup/deb-src.awk" \
            /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$entries" ] && [ -f /etc/apt/sources.list ]; then
        entries=$(awk -v format=list -f "$FERRY_ROOT/tools/setup/deb-src.awk" \
            /etc/apt/sources.list)
    fi
    [ -n "$entries" ] || {
        warn "no Debian 'deb' entries found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
        return 1
    }
    say "lwIP source: adding deb-src entries ($FERRY_DEB_SRC_FILE, same archives as debian.sources)"
    local tmp
    tmp=$(mktemp) || return 1
    {
        echo "# Written by Ferry's tools/ferry: source package entries for the same"
        echo "# archives as the system's Debian entries, so that"
        echo "# 'apt-get source lwip' works. Safe to delete."
        echo
        printf '%s\n' "$entries"
    } >"$tmp"
    as_root install -m 0644 "$tmp" "$FERRY_DEB_SRC_FILE"
    rm -f "$tmp"
}

# Make apt able to fetch the lwip source package.
ensure_lwip_deb_src() {
    apt_knows_lwip_source && return 0
    local log="$FERRY_LOGDIR/apt.log"
    if ! have_deb_src_entry; then
        write_deb_src_entry || return 1
    fi
    say "lwIP source: apt-get update (source package lists)"
    run_logged "$log" apt_get update || return 1
    apt_knows_lwip_source && return 0
    # A deb-src entry existed but not for Debian's archive: add ours.
    if [ ! -f "$FERRY_DEB_SRC_FILE" ]; then
        write_deb_src_entry || return 1
        say "lwIP source: apt-get update (source package lists)"
        run_logged "$log" apt_get update || return 1
        apt_knows_lwip_source && return 0
    fi
    warn "apt knows no 'lwip' source package even with deb-src entries ($FERRY_DEB_SRC_FILE)"
    return 1
}

# Fetch the tarball into the package cache, checking its hash.
fetch_lwip_tarball() { # fetch_lwip_tarball FILENAME HASH DEST
    local name=$1 want=$2 dest=$3
    ensure_lwip_deb_src || return 1
    local tmp
    tmp=$(mktemp -d) || return 1
    # apt downloads as the unprivileged _apt user when it can write there.
    if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
        chown _apt "$tmp"
    fi
    say "lwIP source: apt-get source --download-only lwip"
    if ! (cd "$tmp" && run_logged "$FERRY_LOGDIR/apt-source.log" \
        apt-get -q source --download-only lwip); then
        rm -rf "$tmp"
        return 1
    fi
    if [ ! -f "$tmp/$name" ]; then
        warn "apt-get source lwip did not bring $name; it brought: $(cd "$tmp" && echo *)"
        warn "(the lwip source package has a different upstream version than subprojects/lwip.wrap expects)"
        rm -rf "$tmp"
        return 1
    fi
    local got
    got=$(sha256_of "$tmp/$name")
    if [ "$got" != "$want" ]; then
        err "REFUSING $name from Debian: sha256 mismatch"
        err "  expected $want (subprojects/lwip.wrap, source_hash)"
        err "  got      $got"
        rm -rf "$tmp"
        return 1
    fi
    mkdir -p "$(dirname "$dest")"
    cp "$tmp/$name" "$dest.tmp" && mv -f "$dest.tmp" "$dest"
    rm -rf "$tmp"
    say "lwIP source: $name placed in subprojects/packagecache/ (sha256 verified)"
}

# Hash of everything Meson copies or applies on top of the tarball.
lwip_glue_hash() {
    (
        cd "$FERRY_ROOT/subprojects" &&
            find lwip.wrap packagefiles -type f -print0 | LC_ALL=C sort -z |
            xargs -0 sha256sum | sha256sum | cut -d' ' -f1
    )
}

ensure_lwip_source_locked() {
    local name want dir cache
    name=$(wrap_value source_filename)
    want=$(wrap_value source_hash)
    dir="$FERRY_ROOT/subprojects/$(wrap_value directory)"
    cache="$FERRY_ROOT/subprojects/packagecache/$name"
    if [ -z "$name" ] || [ -z "$want" ]; then
        err "subprojects/lwip.wrap lacks source_filename or source_hash"
        return 1
    fi

    if [ -f "$cache" ]; then
        local got
        got=$(sha256_of "$cache")
        if [ "$got" != "$want" ]; then
            warn "subprojects/packagecache/$name has sha256 $got, expected $want: fetching it again"
            rm -f "$cache"
        fi
    fi
    if [ -f "$cache" ]; then
        say "lwIP source: $name in subprojects/packagecache/ (sha256 ok)"
    else
        fetch_lwip_tarball "$name" "$want" "$cache" || return 1
    fi

    local glue stamp="$dir/.ferry-glue-sha256"
    glue=$(lwip_glue_hash)
    if [ -d "$dir" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$glue" ]; then
        return 0
    fi
    if [ -d "$dir" ]; then
        say "lwIP source: lwip.wrap or subprojects/packagefiles/ changed: unpacking again"
        rm -rf "$dir"
    else
        say "lwIP source: unpacking into subprojects/$(basename "$dir")/"
    fi
    (cd "$FERRY_ROOT" && run_logged "$FERRY_LOGDIR/lwip-unpack.log" \
        meson subprojects download lwip) || return 1
    [ -d "$dir" ] || {
        warn "meson did not create $dir"
        return 1
    }
    printf '%s\n' "$glue" >"$stamp"
}

# Serialised: several checkouts' builds may share this working tree.
ensure_lwip_source() {
    mkdir -p "$FERRY_ROOT/subprojects/packagecache"
    (
        flock 9
        ensure_lwip_source_locked
    ) 9>"$FERRY_ROOT/subprojects/packagecache/.ferry.lock"
}
