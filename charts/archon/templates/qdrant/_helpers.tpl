{{/*
Qdrant, the council's memory: the chart's own server (qdrant.enabled) or an external one
(council.memory.url). The gateway reads the URL and the key Secret through these helpers.
*/}}

{{/* URL the gateway reaches Qdrant at: the external one, else the chart's own Service, else "". */}}
{{- define "archon.qdrant.url" -}}
{{- $v := .Values -}}
{{- if $v.council.memory.url -}}
{{- trimSuffix "/" $v.council.memory.url -}}
{{- else if $v.qdrant.enabled -}}
{{- printf "http://%s:%d" (include "archon.componentName" (dict "root" . "component" "qdrant")) (int $v.qdrant.service.port) -}}
{{- end -}}
{{- end -}}

{{/*
Secret holding Qdrant's API key. External: council.memory.apiKey.existingSecret ("" = an open
server). The chart's own: qdrant.apiKey.existingSecret, else the chart's API key Secret when
apiKey.enabled, else none (the NetworkPolicy then confines it to the gateway).
*/}}
{{- define "archon.qdrant.apiKeySecret" -}}
{{- $v := .Values -}}
{{- if $v.council.memory.url -}}
{{- $v.council.memory.apiKey.existingSecret -}}
{{- else if $v.qdrant.apiKey.existingSecret -}}
{{- $v.qdrant.apiKey.existingSecret -}}
{{- else if $v.apiKey.enabled -}}
{{- include "archon.apiKeySecret" . -}}
{{- end -}}
{{- end -}}

{{- define "archon.qdrant.apiKeyKey" -}}
{{- $v := .Values -}}
{{- if $v.council.memory.url -}}
{{- $v.council.memory.apiKey.key -}}
{{- else if $v.qdrant.apiKey.existingSecret -}}
{{- $v.qdrant.apiKey.key -}}
{{- else -}}
{{- $v.apiKey.key -}}
{{- end -}}
{{- end -}}

{{/* Name of the storage claim: the user's existing claim or the one this chart creates. */}}
{{- define "archon.qdrant.claimName" -}}
{{- .Values.qdrant.persistence.existingClaim | default (include "archon.componentName" (dict "root" . "component" "qdrant-storage")) -}}
{{- end -}}

{{/* Ephemeral storage of the Qdrant container: the snapshots and /tmp emptyDirs plus 1Gi for logs. */}}
{{- define "archon.qdrant.ephemeralStorage" -}}
{{- $mi := add (include "archon.quantityMi" .Values.qdrant.snapshotsSizeLimit | int64) 1024 1024 -}}
{{- if eq (mod $mi 1024) 0 }}{{ printf "%dGi" (div $mi 1024) }}{{ else }}{{ printf "%dMi" $mi }}{{ end -}}
{{- end -}}

{{/*
Port the gateway's egress must allow for an external Qdrant: the URL's own, else the scheme's
default (Qdrant Cloud serves https on 6333, so the port is usually written).
*/}}
{{- define "archon.qdrant.externalPort" -}}
{{- $url := urlParse .Values.council.memory.url -}}
{{- $host := $url.host -}}
{{- if regexMatch ":[0-9]+$" $host -}}
{{- regexFind "[0-9]+$" $host -}}
{{- else if eq $url.scheme "https" -}}
443
{{- else -}}
80
{{- end -}}
{{- end -}}

{{- define "archon.scanner.qdrant" -}}
# kube-score: uid 1000 is the -unprivileged image's own user; IfNotPresent, pin
# qdrant.image.digest for a fixed image.
kube-score/ignore: container-image-pull-policy,container-security-context-user-group-id
checkov.io/skip1: CKV_K8S_15=pulled IfNotPresent; qdrant.image.digest pins it
checkov.io/skip2: CKV_K8S_40=uid 1000 is the qdrant -unprivileged image's own user
checkov.io/skip3: CKV_K8S_35=Qdrant reads its API key from QDRANT__SERVICE__API_KEY or its config file, not a key file
{{- include "archon.scanner.digest" .Values.qdrant.image }}
{{- end -}}
