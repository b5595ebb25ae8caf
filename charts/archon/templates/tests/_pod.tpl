{{/*
The smoke tests: one hardened curl container running a shell script. They get the release's
imagePullSecrets, nodeSelector and tolerations, so they can pull and schedule wherever the server
can (a cluster of tainted GPU nodes has nowhere else to put them). Each renders as a `helm test`
Pod and, with test.argocdPostSync.enabled, as an ArgoCD PostSync Job with the same pod spec.
Call with (dict "root" $ "component" "test-api" "container" "api" "script" "..." "env" (list ...)).
*/}}
{{- define "archon.test.pod" -}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ include "archon.componentName" (dict "root" .root "component" .component) }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "archon.labels" (dict "root" .root "component" "test") | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
    {{- include "archon.scanner.test" .root | nindent 4 }}
spec:
  {{- include "archon.test.podSpec" . | nindent 2 }}
{{- end -}}

{{/*
The same check as an ArgoCD PostSync hook: ArgoCD runs no `helm test` hooks, and runs this after
every sync once the release is healthy. A hook Job is deleted before the next sync creates it
again (BeforeHookCreation: a Job's pod template is immutable) and once it passed (HookSucceeded);
a failed one stays for its logs. An ArgoCD hook annotation makes ArgoCD ignore the Helm hook
annotations of the same resource, so this Job carries none.
*/}}
{{- define "archon.test.job" -}}
{{- $v := .root.Values -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ include "archon.componentName" (dict "root" .root "component" .component) }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "archon.labels" (dict "root" .root "component" "test") | nindent 4 }}
  annotations:
    argocd.argoproj.io/hook: PostSync
    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation,HookSucceeded
    {{- include "archon.scanner.test" .root | nindent 4 }}
spec:
  # The script retries its own calls; a second pod would only repeat the wait.
  backoffLimit: 0
  activeDeadlineSeconds: {{ $v.test.argocdPostSync.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "archon.labels" (dict "root" .root "component" "test") | nindent 8 }}
    spec:
      {{- include "archon.test.podSpec" . | nindent 6 }}
{{- end -}}

{{/* Both checks: the helm test Pod, and the PostSync Job when ArgoCD runs the release. */}}
{{- define "archon.test.checks" -}}
{{ include "archon.test.pod" . }}
{{- if .root.Values.test.argocdPostSync.enabled }}
---
{{ include "archon.test.job" . }}
{{- end }}
{{- end -}}

{{/* The pod spec of one check. */}}
{{- define "archon.test.podSpec" -}}
{{- $v := .root.Values -}}
restartPolicy: Never
automountServiceAccountToken: false
enableServiceLinks: false
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  runAsNonRoot: true
  # curl_user in the curlimages/curl image.
  runAsUser: 100
  runAsGroup: 101
  seccompProfile:
    type: RuntimeDefault
containers:
  - name: {{ .container }}
    image: {{ include "archon.imageRef" $v.test.image | quote }}
    imagePullPolicy: IfNotPresent
    command:
      - /bin/sh
      - -ec
      - |
        {{- .script | trim | nindent 8 }}
    env:
      {{- toYaml .env | nindent 6 }}
    securityContext:
      runAsNonRoot: true
      readOnlyRootFilesystem: true
      allowPrivilegeEscalation: false
      capabilities:
        drop:
          - ALL
    resources:
      {{- toYaml $v.test.resources | nindent 6 }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* An env entry that reads a Secret's key. */}}
{{- define "archon.test.secretEnv" -}}
{{- toJson (dict "name" .name "valueFrom" (dict "secretKeyRef" (dict "name" .secret "key" .key))) -}}
{{- end -}}
