# shellcheck shell=bash
# External-datastore part of the K3s server boot script, for servers on RDS PostgreSQL or Aurora only
# (components/k3s/datastore.py says why): these functions replace node_boot.sh's etcd helpers
# (@DATASTORE@ .. @DATASTORE-END@), and
# `start_on_datastore` replaces its embedded-etcd block (@ETCD@ .. @ETCD-END@). The database password
# is read here with the instance role and written only into K3s's config file (0600), never printed.

# Writes the `datastore-endpoint` drop-in (argv[1], mode 0600) from the RDS-managed secret on stdin
# (JSON: username, password), URL-encoding both; argv[2:5]: host, port, database.
readonly WRITE_DATASTORE_PY='
import json, os, sys
from urllib.parse import quote
path, host, port, database = sys.argv[1:5]
login = json.load(sys.stdin)
user, word = (quote(login[k], safe="") for k in ("username", "password"))
url = f"postgres://{user}:{word}@{host}:{port}/{database}?sslmode=verify-full"
tmp = path + ".tmp"
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    f.write("datastore-endpoint: " + json.dumps(url) + "\n")
os.replace(tmp, path)
'

# fetch_datastore_ca: the region's RDS CA bundle (public), over HTTPS verified against the OS trust
# store, replaced atomically and only with a bundle that loads as a CA file (python3's ssl, as on every node).
fetch_datastore_ca() {
  local tmp
  tmp=$(mktemp "${DATASTORE_CA_FILE}.XXXXXX")
  if curl -sSf --proto '=https' --max-time 30 -o "${tmp}" "${DATASTORE_CA_URL}" \
      && python3 -c 'import ssl, sys; ssl.create_default_context(cafile=sys.argv[1])' "${tmp}" 2>/dev/null; then
    chmod 0644 "${tmp}"
    mv -f "${tmp}" "${DATASTORE_CA_FILE}"
  else
    rm -f "${tmp}"
    return 1
  fi
}

# write_datastore_endpoint FILE: K3s's `datastore-endpoint` from the RDS-managed master secret, read
# with the instance role and handed to python on stdin (never in argv, never echoed).
write_datastore_endpoint() {
  local secret
  secret=$(aws secretsmanager get-secret-value --region "${AWS_REGION}" --secret-id "${DATASTORE_SECRET_ARN}" \
    --query SecretString --output text) || return 1
  python3 -c "${WRITE_DATASTORE_PY}" "$1" "${DATASTORE_HOST}" "${DATASTORE_PORT}" "${DATASTORE_NAME}" <<<"${secret}"
}

# datastore_digest FILE: a checksum of the CA bundle and the endpoint drop-in (empty input if absent).
datastore_digest() {
  cat "${DATASTORE_CA_FILE}" "$1" 2>/dev/null | sha256sum || true
}

# refresh_datastore (k3s-datastore-refresh.timer): RDS rotates the managed password and may add CAs;
# re-read both and restart K3s only when one changed (open connections survive a password change).
refresh_datastore() {
  local dropin before
  dropin="${K3S_CONFIG_DIR}/config.yaml.d/${DATASTORE_DROPIN}"
  before=$(datastore_digest "${dropin}")
  fetch_datastore_ca || log "cannot refresh the RDS CA bundle: keeping the current one"
  if ! write_datastore_endpoint "${dropin}"; then
    log "cannot read the datastore secret: keeping the current endpoint"
    return 1
  fi
  if [ "$(datastore_digest "${dropin}")" != "${before}" ]; then
    log "datastore credentials or CA bundle changed: restarting k3s"
    systemctl restart k3s
  fi
}

# start_on_datastore DROPINS: every server connects to the database; there is no cluster to start or
# join. Each places the Pulumi-minted PKI before K3s first starts, so whichever server writes the
# bootstrap data first, all agree on the CAs.
start_on_datastore() {
  log "using the external datastore at ${DATASTORE_HOST}"
  if [ ! -e "${K3S_TLS_DIR}/server-ca.crt" ]; then retry 30 fetch_pki; fi
  retry 30 fetch_datastore_ca
  retry 30 write_datastore_endpoint "$1/${DATASTORE_DROPIN}"
  systemctl enable --now "${DATASTORE_REFRESH_TIMER}"
}

if [ "${1:-}" = refresh-datastore ]; then
  refresh_datastore
  exit
fi
