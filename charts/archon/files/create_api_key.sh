# Create the API key Secret once: leave an existing one alone, so clients keep their key.
sa="${ARCHON_SA_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}"
ns=$(cat "${sa}/namespace")
api="https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}/api/v1/namespaces/${ns}/secrets"
set -- --cacert "${sa}/ca.crt" -H "Authorization: Bearer $(cat "${sa}/token")" --max-time 30
code=$(curl -sS -o /dev/null -w '%{http_code}' "$@" "${api}/${ARCHON_SECRET}")
case "${code}" in
  200) echo "archon: Secret ${ARCHON_SECRET} exists, key kept"; exit 0 ;;
  404) ;;
  *) echo "archon: reading Secret ${ARCHON_SECRET} answered HTTP ${code}"; exit 1 ;;
esac
# 24 random bytes as hex; LiteLLM wants its master key to start with sk-.
key="sk-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')"
body='{"apiVersion":"v1","kind":"Secret","type":"Opaque","metadata":{"name":"'"${ARCHON_SECRET}"'","labels":'"${ARCHON_LABELS}"'},"stringData":{"'"${ARCHON_SECRET_KEY}"'":"'"${key}"'"}}'
code=$(printf "%s" "${body}" | curl -sS -o /dev/null -w "%{http_code}" "$@" -X POST -H "Content-Type: application/json" --data-binary @- "${api}")
case "${code}" in
  201) echo "archon: created Secret ${ARCHON_SECRET}" ;;
  409) echo "archon: Secret ${ARCHON_SECRET} was created meanwhile, key kept" ;;
  *) echo "archon: creating Secret ${ARCHON_SECRET} answered HTTP ${code}"; exit 1 ;;
esac
