#!/bin/sh
# edge-bridge on a Debian/Ubuntu gateway: `make install` / `make uninstall` (as root) run this script.
#
#   install    the package in its own venv under PREFIX, with the versions CI tested (constraints.txt); the systemd
#              unit in UNITDIR; SYSCONFDIR with a config skeleton (mode 0640, never overwriting an existing one) and a
#              secrets/ directory (0700) for LoadCredential=; the system user edge-bridge the unit runs as.
#   uninstall  the venv and the unit; the configuration, the secrets and the database (/var/lib/edge-bridge) stay.
#
# DESTDIR stages the tree under another root (packaging, tests): then no user is created, nothing is chowned and
# systemd is not reloaded. Defaults: PREFIX=/opt/edge-bridge SYSCONFDIR=/etc/edge-bridge UNITDIR=/etc/systemd/system.
set -eu

action=${1:?usage: install.sh install|uninstall}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/opt/edge-bridge}
SYSCONFDIR=${SYSCONFDIR:-/etc/edge-bridge}
UNITDIR=${UNITDIR:-/etc/systemd/system}
PYTHON=${PYTHON:-python3}
venv=$DESTDIR$PREFIX
etc=$DESTDIR$SYSCONFDIR
unit=$DESTDIR$UNITDIR/edge-bridge.service

live_system() { [ -z "$DESTDIR" ] && [ "$(id -u)" -eq 0 ]; }

install_package() {
    "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "edge-bridge needs Python 3.11+")'
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -c constraints.txt .
    install -m 0644 README.md "$venv/README.md"
}

install_unit() {
    install -d -m 0755 "$DESTDIR$UNITDIR"
    sed -e "s#/opt/edge-bridge#$PREFIX#g" -e "s#/etc/edge-bridge/#$SYSCONFDIR/#g" systemd/edge-bridge.service >"$unit"
    chmod 0644 "$unit"
}

install_config() {
    install -d -m 0755 "$etc"
    install -d -m 0700 "$etc/secrets"
    if [ -e "$etc/config.toml" ]; then
        echo "kept $etc/config.toml (an existing configuration is never overwritten)"
    else
        install -m 0640 config.example.toml "$etc/config.toml"
        echo "wrote $etc/config.toml: edit it, then: edge-bridge check-config --config $SYSCONFDIR/config.toml"
    fi
}

install_user() {
    getent passwd edge-bridge >/dev/null ||
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin edge-bridge
    chgrp edge-bridge "$etc/config.toml"
    systemctl daemon-reload 2>/dev/null || true
}

case $action in
install)
    install_package
    install_unit
    install_config
    if live_system; then install_user; fi
    echo "installed $PREFIX; start with: systemctl enable --now edge-bridge"
    ;;
uninstall)
    rm -rf "$venv" "$unit"
    if live_system; then systemctl daemon-reload 2>/dev/null || true; fi
    echo "removed $PREFIX and the unit; kept $SYSCONFDIR and /var/lib/edge-bridge (remove them by hand if wanted)"
    ;;
*)
    echo "usage: install.sh install|uninstall" >&2
    exit 2
    ;;
esac
