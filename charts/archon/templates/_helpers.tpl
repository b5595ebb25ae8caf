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

{{/* The vLLM image: AMD pods need the ROCm build. */}}
{{- define "archon.image" -}}
{{- if eq .Values.gpu.vendor "amd" -}}
{{- printf "%s:%s" .Values.gpu.amd.image.repository .Values.gpu.amd.image.tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
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
