{{/*
A `helm test` pod: one hardened curl container running a shell script. It gets the release's
imagePullSecrets, nodeSelector and tolerations, so it can pull and schedule wherever the server
can (a cluster of tainted GPU nodes has nowhere else to put it).
Call with (dict "root" $ "component" "test-api" "container" "api" "script" "..." "env" (list ...)).
*/}}
{{- define "archon.test.pod" -}}
{{- $v := .root.Values -}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ include "archon.componentName" (dict "root" .root "component" .component) }}
  labels:
    {{- include "archon.labels" (dict "root" .root "component" "test") | nindent 4 }}
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
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
      image: "{{ $v.test.image.repository }}:{{ $v.test.image.tag }}"
      imagePullPolicy: IfNotPresent
      command:
        - /bin/sh
        - -ec
        - |
          {{- .script | trim | nindent 10 }}
      env:
        {{- toYaml .env | nindent 8 }}
      securityContext:
        runAsNonRoot: true
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        capabilities:
          drop:
            - ALL
      resources:
        {{- toYaml $v.test.resources | nindent 8 }}
  {{- with $v.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* An env entry that reads a Secret's key. */}}
{{- define "archon.test.secretEnv" -}}
{{- toJson (dict "name" .name "valueFrom" (dict "secretKeyRef" (dict "name" .secret "key" .key))) -}}
{{- end -}}
