#!/usr/bin/env bash
# K3s node boot (rendered by components/k3s_user_data.py). Holds no secret: the join token and,
# on the first server of a new cluster, the PKI bundle are fetched here with the instance role.
set -euo pipefail
umask 077

# @SETTINGS@

readonly IMDS=http://169.254.169.254
# Writes each {relative path: PEM} of the JSON bundle on stdin under the directory in argv[1].
readonly WRITE_BUNDLE_PY='
import json, os, sys
root = sys.argv[1]
for rel, pem in json.load(sys.stdin).items():
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pem)
'

log() { echo "k3s-node-boot: $*" >&2; }

# retry N CMD...: run CMD until it succeeds, at most N times, 10 s apart.
retry() {
  local attempts=$1 n=1
  shift
  until "$@"; do
    if [ "$n" -ge "$attempts" ]; then
      log "giving up after ${attempts} attempts: $1"
      return 1
    fi
    n=$((n + 1))
    sleep 10
  done
}

# IMDSv2 only (the launch template requires tokens, hop limit 1).
imds() {
  local token
  token=$(curl -sSf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "${IMDS}/latest/api/token")
  curl -sSf -H "X-aws-ec2-metadata-token: ${token}" "${IMDS}/latest/meta-data/$1"
}

# fetch_parameter NAME FILE: SecureString value into FILE (0600), written atomically.
fetch_parameter() {
  local tmp
  tmp=$(mktemp "$2.XXXXXX")
  if aws ssm get-parameter --region "${AWS_REGION}" --with-decryption --name "$1" \
      --query Parameter.Value --output text >"${tmp}"; then
    mv -f "${tmp}" "$2"
  else
    rm -f "${tmp}"
    return 1
  fi
}

# fetch_pki: the Pulumi-minted CAs and service-account key, placed before K3s first starts.
fetch_pki() {
  local bundle
  bundle=$(aws secretsmanager get-secret-value --region "${AWS_REGION}" --secret-id "${PKI_SECRET_ID}" \
    --query SecretString --output text) || return 1
  python3 -c "${WRITE_BUNDLE_PY}" "${K3S_TLS_DIR}" <<<"${bundle}"
}

# @DATASTORE@
# cluster_answers: does a K3s server already answer at the server URL (through the NLB)?
cluster_answers() {
  curl -ksSf --max-time 5 -o /dev/null "${SERVER_URL}/ping"
}

# healthy_peers INSTANCE_ID: how many other servers pass the API target group's health check.
# A second opinion before cluster-init: a transient network or DNS failure at boot must never
# make the bootstrap server start a second cluster next to a live one.
healthy_peers() {
  aws elbv2 describe-target-health --region "${AWS_REGION}" --target-group-arn "${API_TARGET_GROUP_ARN}" \
    --output text \
    --query "length(TargetHealthDescriptions[?TargetHealth.State=='healthy' && Target.Id!='$1'])"
}

# latest_snapshot: newest etcd snapshot name in the bucket, empty when there is none.
latest_snapshot() {
  local key
  key=$(aws s3api list-objects-v2 --region "${AWS_REGION}" --bucket "${SNAPSHOT_BUCKET}" \
    --prefix "${SNAPSHOT_FOLDER}/" --output text \
    --query "sort_by(Contents[?!contains(Key, '.metadata/')] || \`[]\`, &LastModified)[-1].Key") || return 1
  case "${key}" in
    None | "") echo "" ;;
    *) basename "${key}" ;;
  esac
}

# @DATASTORE-END@
# ensure_time_sync: chrony uses the Amazon Time Sync Service (link-local, no egress). AL2023 ships
# that default; this enforces it instead of assuming it, whatever the chrony.conf/chrony.d layout.
ensure_time_sync() {
  if grep -Eqs "^(server|pool)[[:space:]]+${TIME_SYNC_SERVER//./\\.}([[:space:]]|$)" "${CHRONY_CONF}" \
      "${CHRONY_CONF_DIR}"/*; then
    return 0
  fi
  log "adding the Amazon Time Sync Service to ${CHRONY_CONF}"
  echo "server ${TIME_SYNC_SERVER} prefer iburst minpoll 4 maxpoll 4" >>"${CHRONY_CONF}"
  systemctl restart chronyd || log "chronyd restart failed; time sync unchanged until the next start"
}

install_k3s() {
  local script
  script=$(mktemp)
  # install.sh from the pinned release tag; it verifies the binary against the release checksums.
  retry 10 curl -sSfL -o "${script}" "https://raw.githubusercontent.com/k3s-io/k3s/${K3S_VERSION//+/%2B}/install.sh"
  INSTALL_K3S_VERSION="${K3S_VERSION}" INSTALL_K3S_EXEC="$1" INSTALL_K3S_SKIP_START=true \
    INSTALL_K3S_SKIP_SELINUX_RPM=true INSTALL_K3S_SELINUX_WARN=true sh "${script}"
}

main() {
  local instance_id az node_name lifecycle dropins restore=""
  instance_id=$(retry 10 imds instance-id)
  az=$(retry 10 imds placement/availability-zone)
  node_name=$(retry 10 imds local-hostname) # the private DNS FQDN: what the AWS cloud controller expects
  lifecycle=$(imds instance-life-cycle || echo on-demand)
  dropins="${K3S_CONFIG_DIR}/config.yaml.d"
  ensure_time_sync
  mkdir -p "${dropins}" "${K3S_TLS_DIR}"

  cat >"${dropins}/10-instance.yaml" <<EOF
node-name: ${node_name}
kubelet-arg+:
  - provider-id=aws:///${az}/${instance_id}
node-label+:
  - k8s-platform/capacity-type=${lifecycle}
EOF

  retry 30 fetch_parameter "${TOKEN_PARAMETER}" "${K3S_CONFIG_DIR}/token"

  if [ "${NODE_KIND}" = server ]; then
    retry 30 fetch_parameter "${AGENT_TOKEN_PARAMETER}" "${K3S_CONFIG_DIR}/agent-token"
    # @ETCD@
    local init=false
    # Fails closed: when the target group cannot be read, the server joins (and waits) instead.
    if [ "${SERVER_ROLE}" = bootstrap ] && ! retry 6 cluster_answers \
        && [ "$(retry 30 healthy_peers "${instance_id}")" = 0 ]; then
      init=true
    fi
    if [ "${init}" = true ]; then
      # The one server allowed to start a cluster, no cluster answers and no other server is healthy:
      # initialise it with the Pulumi-minted PKI, restoring the newest etcd snapshot if the cluster
      # existed before.
      log "no server answers at ${SERVER_URL}: initialising the cluster"
      retry 30 fetch_pki
      echo "cluster-init: true" >"${dropins}/20-role.yaml"
      restore=$(latest_snapshot) || { log "cannot list etcd snapshots: starting empty"; restore=""; }
    else
      log "joining the cluster at ${SERVER_URL}"
      retry 90 cluster_answers
      echo "server: ${SERVER_URL}" >"${dropins}/20-role.yaml"
    fi
    # @ETCD-END@
  fi

  install_k3s "${NODE_KIND}"
  if [ -n "${restore}" ]; then
    log "restoring etcd snapshot ${restore}"
    k3s server --cluster-reset --cluster-reset-restore-path="${restore}"
  fi
  local unit=k3s
  if [ "${NODE_KIND}" = agent ]; then unit=k3s-agent; fi
  systemctl enable --now "${unit}"
  log "${unit} started as ${node_name}"
}

main "$@"
