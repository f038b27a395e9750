# shellcheck shell=bash
# tools/setup/packages.sh - make sure the Debian packages Ferry needs are
# installed. Sourced by tools/ferry. Only calls apt-get when something is
# missing, so a second run is quick and needs no root.

# Build: meson ninja-build pkg-config gcc python3. Tests: check (+ subunit,
# which Debian's check.pc links), spin (model checking). Simulator: libslirp
# (its slirp.pc needs glib's), libconfig (boot configuration). ARM: the
# bare-metal cross compiler and newlib. dpkg-dev: apt-get source (and patch,
# which Meson uses to apply the lwIP fixes in subprojects/packagefiles/).
# curl: the tests fetch httpd's pages from the host through the slirp
# driver's port forwards, as a user would.
FERRY_PACKAGES=(
    meson ninja-build pkg-config gcc python3 dpkg-dev
    check libsubunit-dev spin curl
    libslirp-dev libglib2.0-dev libconfig-dev
    gcc-arm-none-eabi libnewlib-arm-none-eabi
)

# Echo the packages of "$@" that are not installed.
packages_missing() {
    local p status
    for p in "$@"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [ "$status" = installed ] || printf '%s\n' "$p"
    done
}

apt_get() {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 "$@"
}

ensure_packages() {
    local missing
    mapfile -t missing < <(packages_missing "${FERRY_PACKAGES[@]}")
    if [ "${#missing[@]}" -eq 0 ]; then
        say "packages: all ${#FERRY_PACKAGES[@]} Debian packages present"
        return 0
    fi
    say "packages: installing ${missing[*]}"
    local log="${FERRY_LOGDIR}/apt.log"
    say "packages: apt-get update"
    run_logged "$log" apt_get update || return 1
    say "packages: apt-get install (${#missing[@]} missing, with their dependencies)"
    run_logged "$log" apt_get install -y --no-install-recommends "${missing[@]}" || return 1
    mapfile -t missing < <(packages_missing "${FERRY_PACKAGES[@]}")
    if [ "${#missing[@]}" -ne 0 ]; then
        warn "still missing after apt-get install: ${missing[*]}"
        return 1
    fi
    say "packages: done"
}
