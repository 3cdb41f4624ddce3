#!/bin/sh
# The image's entrypoint: `docker run IMAGE <process> [args]` runs one Fleetgraph process.
set -eu

# Secrets arrive as files (Compose secrets, Kubernetes Secret volumes), while the processes read
# these from the environment: FOO_FILE=/path sets FOO to that file's content, unless FOO is set.
# (NATS_CREDENTIALS_FILE the processes read themselves.) A fixed list: other *_FILE variables,
# such as OpenSSL's SSL_CERT_FILE, name files that are no setting's value.
for name in AUTH_JWT_SECRET INTERNAL_AUTH_SECRET CLUSTER_SECRETS_KEY LOGS_DOWNLOAD_SECRET NATS_ACCOUNT_SEED MONGODB_URI; do
  eval "file=\${${name}_FILE:-} current=\${$name:-}"
  # shellcheck disable=SC2154 # set by the eval
  if [ -n "$file" ] && [ -z "$current" ]; then
    value=$(cat "$file") # an unreadable file stops here (set -e)
    export "$name=$value"
  fi
done
unset name current file value

process="${1:-}"
[ $# -eq 0 ] || shift
case "$process" in
  gateway | profiles | clusters | images | health | logs | local-cloud | agent)
    exec node "/app/node_modules/@fleetgraph/$process/dist/main.js" "$@" ;;
  nats-init)
    exec node /app/dist/nats-init.js "$@" ;;
  node)
    # The agent's Deployment, as the clusters service writes it, runs `node services/agent/dist/main.js`.
    exec node "$@" ;;
  *)
    echo "usage: docker run IMAGE gateway|profiles|clusters|images|health|logs|local-cloud|agent|nats-init [args]" >&2
    exit 64 ;;
esac
