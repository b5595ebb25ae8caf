{{/*
Names and labels. Kubernetes names are DNS labels: at most 63 characters.
*/}}

{{/* Chart name, truncated. */}}
{{- define "archon.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-wide prefix: <release>-<chart>, or the release alone when it already holds the chart name. */}}
{{- define "archon.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Name of one component's resource: <fullname>-<component>. The prefix is cut, not the suffix, so two
components of a long release never collapse onto the same name.
Call with (dict "root" $ "component" "server").
*/}}
{{- define "archon.componentName" -}}
{{- $max := int (sub 62 (len .component)) -}}
{{- printf "%s-%s" (include "archon.fullname" .root | trunc $max | trimSuffix "-") .component -}}
{{- end -}}

{{/* chart label value: name-version, with `+` (not allowed in labels) replaced. */}}
{{- define "archon.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels: no version, they must stay the same across upgrades (a Deployment's selector is
immutable). Call with (dict "root" $ "component" "server").
*/}}
{{- define "archon.selectorLabels" -}}
app.kubernetes.io/name: {{ include "archon.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels. Call with (dict "root" $ "component" "server"). */}}
{{- define "archon.labels" -}}
helm.sh/chart: {{ include "archon.chart" .root }}
{{ include "archon.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: archon
{{- end -}}

{{/*
Annotations of one resource: the chart's (ArgoCD sync waves and options, the keep policy) and the
user's, one map so a key given by both is written once; the user's value wins.
Call with (dict "chart" (dict ...) "user" .Values.x.annotations).
*/}}
{{- define "archon.annotations" -}}
{{- toYaml (merge (deepCopy (.user | default dict)) .chart) -}}
{{- end -}}

{{- define "archon.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "archon.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Name of the model cache claim: the user's existing claim or the one this chart creates. */}}
{{- define "archon.cacheClaimName" -}}
{{- .Values.persistence.existingClaim | default (include "archon.componentName" (dict "root" . "component" "model-cache")) -}}
{{- end -}}

{{/*
An image reference from {repository, tag, digest}: `repo:tag@sha256:...` when pinned by digest (the
runtime pulls by digest and ignores the tag, which stays for readers), else `repo:tag`.
*/}}
{{- define "archon.imageRef" -}}
{{- $ref := .repository -}}
{{- with .tag }}{{ $ref = printf "%s:%s" $ref . }}{{ end -}}
{{- with .digest }}{{ $ref = printf "%s@%s" $ref . }}{{ end -}}
{{- $ref -}}
{{- end -}}

{{/* The vLLM image: AMD pods need the ROCm build. */}}
{{- define "archon.image" -}}
{{- if eq .Values.gpu.vendor "amd" -}}
{{- include "archon.imageRef" .Values.gpu.amd.image -}}
{{- else -}}
{{- include "archon.imageRef" .Values.image -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret holding the API key: the user's, or the one the hook Job creates. */}}
{{- define "archon.apiKeySecret" -}}
{{- .Values.apiKey.existingSecret | default (include "archon.componentName" (dict "root" . "component" "api-key")) -}}
{{- end -}}

{{/*
A quantity of bytes ("10Gi", "512Mi", "2G") in MiB, rounded up; the scratch volumes' ephemeral
storage is their sum. Binary and decimal suffixes from Ki to Ti; a bare number is bytes.
*/}}
{{- define "archon.quantityMi" -}}
{{- $q := toString . -}}
{{- $n := regexFind "^[0-9]+" $q | int64 -}}
{{- $unit := trimPrefix (toString $n) $q -}}
{{- $bytes := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "K" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "" 1 -}}
{{- if not (hasKey $bytes $unit) -}}
{{- fail (printf "values: scratch size %q is not a plain quantity; fix: write it like 10Gi or 512Mi" $q) -}}
{{- end -}}
{{- div (add (mul $n (get $bytes $unit)) 1048575) 1048576 -}}
{{- end -}}

{{/* Ephemeral storage of a server container: both scratch emptyDirs plus 1Gi for logs. */}}
{{- define "archon.server.ephemeralStorage" -}}
{{- $v := .Values -}}
{{- $mi := add (include "archon.quantityMi" $v.scratch.homeSizeLimit | int64) (include "archon.quantityMi" $v.scratch.tmpSizeLimit | int64) 1024 -}}
{{- if eq (mod $mi 1024) 0 }}{{ printf "%dGi" (div $mi 1024) }}{{ else }}{{ printf "%dMi" $mi }}{{ end -}}
{{- end -}}

{{/* Resources with ephemeral-storage added to requests and limits unless the user set it. */}}
{{- define "archon.withEphemeral" -}}
{{- $resources := deepCopy (.resources | default dict) -}}
{{- range $section := list "requests" "limits" -}}
{{- $part := deepCopy (get $resources $section | default dict) -}}
{{- if not (hasKey $part "ephemeral-storage") -}}
{{- $_ := set $part "ephemeral-storage" $.storage -}}
{{- end -}}
{{- $_ := set $resources $section $part -}}
{{- end -}}
{{- toYaml $resources -}}
{{- end -}}

{{/* Extended resource name of one GPU of the selected vendor. */}}
{{- define "archon.gpuResourceName" -}}
{{- if eq .Values.gpu.vendor "amd" -}}
{{- .Values.gpu.amd.resourceName -}}
{{- else -}}
{{- .Values.gpu.nvidia.resourceName -}}
{{- end -}}
{{- end -}}

{{/* Name clients use in "model". */}}
{{- define "archon.servedModelName" -}}
{{- default .name .servedModelName -}}
{{- end -}}

{{/*
Surge pods a rollout adds: maxSurge as a count, or a percentage of replicas rounded up (the way the
Deployment controller rounds it). Kubernetes' default for RollingUpdate is 25%.
*/}}
{{- define "archon.surgePods" -}}
{{- $strategy := .Values.strategy -}}
{{- if ne $strategy.type "RollingUpdate" -}}
0
{{- else -}}
{{- $surge := "25%" -}}
{{- if and $strategy.rollingUpdate (hasKey $strategy.rollingUpdate "maxSurge") -}}
{{- $surge = $strategy.rollingUpdate.maxSurge -}}
{{- end -}}
{{- if kindIs "string" $surge -}}
{{- $pct := trimSuffix "%" $surge | int -}}
{{- div (add (mul (int .Values.replicaCount) $pct) 99) 100 -}}
{{- else -}}
{{- int $surge -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Scanner findings that do not fit a GPU server, suppressed where they arise with the reason. Never
on a scanner's command line: `archon bench security` counts what is left.
*/}}
{{- define "archon.scanner.gpuDeployment" -}}
# kube-score: one GPU serves one pod (Recreate, one replica, no PodDisruptionBudget, no spread or
# anti-affinity); a 10 GB image is pulled IfNotPresent (pin image.digest for a fixed image);
# the user and group are values (vLLM images run as any uid); /health is both probes because
# vLLM has no separate readiness route.
kube-score/ignore: deployment-strategy,deployment-replicas,deployment-has-poddisruptionbudget,deployment-has-host-podantiaffinity,pod-topology-spread-constraints,container-image-pull-policy,container-security-context-user-group-id,pod-probes-identical
checkov.io/skip1: CKV_K8S_15=a 10 GB image is pulled IfNotPresent; image.digest pins it
checkov.io/skip2: CKV_K8S_40=runAsUser is a value; the vLLM images run as any non-root uid
checkov.io/skip3: CKV_K8S_35=vLLM reads its API key only from VLLM_API_KEY or the command line
{{- include "archon.scanner.digest" (ternary .Values.gpu.amd.image .Values.image (eq .Values.gpu.vendor "amd")) }}
{{- end -}}

{{- define "archon.scanner.gateway" -}}
# kube-score: replicas and rollout are values; the uid is a value; IfNotPresent, pin
# gateway.image.digest for a fixed image.
kube-score/ignore: deployment-replicas,deployment-has-poddisruptionbudget,deployment-has-host-podantiaffinity,pod-topology-spread-constraints,container-image-pull-policy,container-security-context-user-group-id
checkov.io/skip1: CKV_K8S_15=pulled IfNotPresent; gateway.image.digest pins it
checkov.io/skip2: CKV_K8S_40=runAsUser is a value; LiteLLM runs as any non-root uid
checkov.io/skip3: CKV_K8S_35=LiteLLM takes its master key from an os.environ/ reference, not a file
{{- include "archon.scanner.digest" .Values.gateway.image }}
{{- end -}}

{{- define "archon.scanner.apiKeyJob" -}}
# kube-score: runs once per install; the curl image's own user (100).
kube-score/ignore: container-image-pull-policy,container-security-context-user-group-id
checkov.io/skip1: CKV_K8S_15=a small pinned image, pulled IfNotPresent; test.image.digest pins it
checkov.io/skip2: CKV_K8S_40=curl_user (100) is the curl image's own user
checkov.io/skip3: CKV_K8S_38=the one pod that talks to the API server, to create the key Secret
{{- include "archon.scanner.digest" .Values.test.image }}
{{- end -}}

{{- define "archon.scanner.test" -}}
# kube-score: a smoke test pulls a small pinned image once; curl_user (100) is the image's own.
kube-score/ignore: container-image-pull-policy,container-security-context-user-group-id
checkov.io/skip1: CKV_K8S_15=a small pinned image, pulled IfNotPresent; test.image.digest pins it
checkov.io/skip2: CKV_K8S_40=curl_user (100) is the curl image's own user
checkov.io/skip3: CKV_K8S_35=curl takes the bearer key as a header value, not a key file
checkov.io/skip4: CKV_K8S_8=a one-shot check has nothing to probe
checkov.io/skip5: CKV_K8S_9=a one-shot check has nothing to probe
{{- include "archon.scanner.digest" .Values.test.image }}
{{- end -}}

{{/* The digest finding, suppressed only while the image is pinned by tag alone (a value). */}}
{{- define "archon.scanner.digest" -}}
{{- if not .digest }}
checkov.io/skip9: CKV_K8S_43=pinned by tag; set the image's digest value to pin it by digest
{{- end -}}
{{- end -}}
