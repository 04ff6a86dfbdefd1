#!/usr/bin/env bash
# Make sure the Debian packages the registry needs are on this machine, and that the Python
# interpreter can build the project's virtual environment.
#
# Usage: scripts/ensure-system-packages.sh [run|test]
#   run   what `make run` needs (the default)
#   test  the run set plus what the test suite needs (a headless browser)
#
# Installed packages are left alone, so a second call is a quick no-op. Missing packages are
# installed with apt-get when we are root; otherwise the script stops and prints the command
# to run, because silently calling sudo from a Makefile would hang on a password prompt.
#
# Environment:
#   PYTHON                             interpreter that will create .venv (default python3)
#   REGISTRY_SYSTEM_PACKAGES_EXTRA     extra Debian packages, space-separated (also a test hook)
#   REGISTRY_SKIP_SYSTEM_PACKAGES=1    skip the Debian package check (non-Debian machines, images
#                                      built elsewhere); the Python checks still run
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# The one list of Debian 12 (bookworm) package names. Keep it here and nowhere else.
# - libpango-1.0-0, libpangoft2-1.0-0: WeasyPrint renders contracts through Pango (loaded with
#   dlopen, so pip cannot pull them in).
# - libharfbuzz-subset0: WeasyPrint >= 61 subsets embedded fonts with libharfbuzz-subset.so.0;
#   without it WeasyPrint emits a DeprecationWarning, which the test suite turns into an error.
# - fonts-noto-cjk: the Chinese text in contracts must render with real glyphs, not tofu.
# - postgresql-client: `flask backup` / `flask restore` run pg_dump and pg_restore on PostgreSQL.
RUN_PACKAGES=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk postgresql-client)
# - chromium, chromium-driver: the browser tests drive Debian's headless Chromium
#   (/usr/bin/chromium, /usr/bin/chromedriver); test tools cannot download their own here.
TEST_PACKAGES=(chromium chromium-driver)
# Package that gives Debian's system python3 its ensurepip (needed by `python3 -m venv`).
VENV_PACKAGE=python3-venv
MIN_PYTHON=(3 11)
# ---------------------------------------------------------------------------------------------

PYTHON="${PYTHON:-python3}"
prog="scripts/ensure-system-packages.sh"

say() { printf '%s: %s\n' "$prog" "$*"; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

set_name="${1:-run}"
case "$set_name" in
    run) wanted=("${RUN_PACKAGES[@]}") ;;
    test) wanted=("${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
    *) die "unknown package set '$set_name' (expected 'run' or 'test')" ;;
esac
if [[ -n "${REGISTRY_SYSTEM_PACKAGES_EXTRA:-}" ]]; then
    # Word splitting is the point here: the variable is a space-separated list of names.
    read -r -a extra <<<"$REGISTRY_SYSTEM_PACKAGES_EXTRA"
    wanted+=("${extra[@]}")
fi

python_found() { command -v "$PYTHON" >/dev/null 2>&1; }

python_version_ok() {
    "$PYTHON" -c "import sys; sys.exit(sys.version_info[:2] < (${MIN_PYTHON[0]}, ${MIN_PYTHON[1]}))"
}

# `python3 -m venv` needs both modules; Debian splits ensurepip out of its python3.11 package.
python_has_venv() { "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; }

# Only Debian's own interpreter is fixed by installing python3-venv; a pyenv or hand-built
# Python without ensurepip needs rebuilding instead, so don't pretend apt can help.
python_is_debian_system() {
    local path
    path="$(command -v "$PYTHON")"
    path="$(readlink -f "$path")"
    [[ "$path" == /usr/bin/python3* ]]
}

is_installed() {
    # A package that was removed but not purged reports "deinstall ok config-files".
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
if [[ "${REGISTRY_SKIP_SYSTEM_PACKAGES:-}" == "1" ]]; then
    say "REGISTRY_SKIP_SYSTEM_PACKAGES=1: not checking Debian packages (${wanted[*]})"
elif ! command -v dpkg-query >/dev/null 2>&1; then
    # Not Debian: we cannot tell what is installed, so name what the code expects and go on.
    say "warning: dpkg-query not found (not Debian?); cannot check for the system libraries."
    say "warning: make sure the equivalents of these Debian packages are installed: ${wanted[*]}"
else
    for pkg in "${wanted[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    # The interpreter itself: a fresh Debian may lack python3 or its venv support.
    if ! python_found; then
        if [[ "$PYTHON" == python3 ]]; then
            missing+=(python3 "$VENV_PACKAGE")
        fi
    elif ! python_has_venv && python_is_debian_system && ! is_installed "$VENV_PACKAGE"; then
        missing+=("$VENV_PACKAGE")
    fi
fi

if ((${#missing[@]} > 0)); then
    if [[ "$(id -u)" -eq 0 ]]; then
        say "installing missing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # The package lists on a fresh machine are empty or stale: refresh them once, here.
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
        for pkg in "${missing[@]}"; do
            is_installed "$pkg" || die "apt-get finished but '$pkg' is still not installed"
        done
    else
        {
            echo "$prog: these Debian packages are needed but not installed:"
            for pkg in "${missing[@]}"; do
                echo "    $pkg"
            done
            echo "Install them as root, then run make again:"
            echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}"
        } >&2
        exit 1
    fi
fi

# Python checks come after any install, since that may have brought python3 or python3-venv.
python_found || die "'$PYTHON' not found; install Python ${MIN_PYTHON[0]}.${MIN_PYTHON[1]} or newer (Debian 12: apt-get install python3 python3-venv) or run make with PYTHON=/path/to/python3.11"
python_version_ok || die "$("$PYTHON" --version 2>&1) is too old: the registry needs Python ${MIN_PYTHON[0]}.${MIN_PYTHON[1]} or newer (set PYTHON=/path/to/python3.11 or newer)"
if ! python_has_venv; then
    if python_is_debian_system; then
        die "'$PYTHON -m venv' does not work; install Debian's venv support as root: apt-get install -y --no-install-recommends $VENV_PACKAGE"
    fi
    die "'$PYTHON' ($(command -v "$PYTHON")) has no ensurepip/venv module; rebuild it with ensurepip or set PYTHON to an interpreter that has it"
fi

say "ok ($set_name set: ${wanted[*]}; $("$PYTHON" --version 2>&1))"
