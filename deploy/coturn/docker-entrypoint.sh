#!/bin/sh
# Starts coturn in the Compose files (deploy/compose/*.yml) with deploy/coturn/turnserver.conf,
# taking from the environment what must not be written into that file:
#
#   TURN_SECRET       the shared secret (= Orbita's ORBITA_TURN_SECRET); required, at least 32
#                     characters, never the placeholder `change-me`
#   TURN_REALM        the relay's realm (its DNS name); required
#   TURN_EXTERNAL_IP  the relay's public IP when the host is behind NAT (optional; `PUBLIC` or
#                     `PUBLIC/PRIVATE`)
#   TURN_CONFIG       the template (default /etc/coturn/turnserver.conf)
#
# The secret goes into a private copy of the configuration on a tmpfs (mode 0600), not onto
# the command line, where `ps` on the host would show it. Extra arguments are passed to
# turnserver (they win over the file).
set -eu

template=${TURN_CONFIG:-/etc/coturn/turnserver.conf}
secret=${TURN_SECRET:-}
realm=${TURN_REALM:-}
external_ip=${TURN_EXTERNAL_IP:-}

fail() {
    echo "coturn: $*" >&2
    exit 1
}

[ -r "$template" ] || fail "cannot read $template"
[ -n "$secret" ] || fail "TURN_SECRET is empty: set ORBITA_TURN_SECRET in the .env file (openssl rand -hex 32)"
case $secret in
    change-me*) fail "TURN_SECRET is still the placeholder: set a random one (openssl rand -hex 32)" ;;
esac
[ "${#secret}" -ge 32 ] || fail "TURN_SECRET is shorter than 32 characters: use openssl rand -hex 32"
[ -n "$realm" ] || fail "TURN_REALM is empty: set it to the relay's DNS name"
case $secret$realm$external_ip in
    *"
"*) fail "TURN_SECRET, TURN_REALM and TURN_EXTERNAL_IP must be one line each" ;;
esac

dir=$(mktemp -d /tmp/coturn.XXXXXX)
config=$dir/turnserver.conf
umask 077
{
    # Everything but the lines this script sets.
    grep -v -e '^static-auth-secret=' -e '^realm=' -e '^external-ip=' -e '^pidfile=' "$template"
    printf 'realm=%s\n' "$realm"
    printf 'static-auth-secret=%s\n' "$secret"
    if [ -n "$external_ip" ]; then
        printf 'external-ip=%s\n' "$external_ip"
    fi
    # The image runs coturn as `nobody`, who cannot write the default /var/run/turnserver.pid.
    printf 'pidfile=%s\n' "$dir/turnserver.pid"
} >"$config"

# The secret stays in the file only; keep it out of turnserver's environment too.
unset TURN_SECRET secret
exec turnserver -c "$config" "$@"
