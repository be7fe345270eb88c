# Shared by scripts/run and scripts/test.

# Create .venv and (re)install when pyproject.toml changed since the last install.
ensure_venv() {
  local extra="${1:-}" spec="." stamp file
  [ -n "$extra" ] && spec=".[$extra]"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  stamp="$(sha256sum pyproject.toml | cut -c1-16)"
  # An install with extras includes the package itself: after ./scripts/test, ./scripts/run
  # (which the suite runs) must not reinstall into the venv the suite is running from.
  [ -z "$extra" ] && grep -qsx "$stamp" .venv/.vsession-installed* && return 0
  file=".venv/.vsession-installed${extra:+-$extra}"
  if [ "$(cat "$file" 2>/dev/null)" != "$stamp" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec"
    echo "$stamp" > "$file"
  fi
}

# ensure_debian_packages PKG...  installs these Debian packages (none given: nothing to do).
ensure_debian_packages() {
  local sudo=""
  [ $# -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@"
}

# ensure_node_modules: `npm ci` (exactly package-lock.json, no browser download) when
# tests/support/tools.py finds a package.json package missing or not at its locked version.
ensure_node_modules() {
  [ -n "$(python3 -I tests/support/tools.py --npm)" ] || return 0
  PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund
}
