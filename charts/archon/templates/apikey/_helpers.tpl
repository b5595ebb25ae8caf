{{/*
The API key Secret, created once by a hook Job when apiKey.existingSecret is empty. The Job runs
before every install and upgrade (ArgoCD runs Helm's pre-install/pre-upgrade hooks as PreSync),
creates the Secret only when it is missing, and never renders the key: `helm template` stays the
same on every run, so ArgoCD sees no drift, and an upgrade keeps the key clients already hold. The
Secret is not part of the release: an uninstall keeps it (delete it by hand to rotate the key).
*/}}
{{- define "archon.apiKey.generated" -}}
{{- if and .Values.apiKey.enabled (not .Values.apiKey.existingSecret) }}true{{ end -}}
{{- end -}}

{{/* Hook annotations; the RBAC and NetworkPolicy come first (weight -10), the Job after (-5). */}}
{{- define "archon.apiKey.hook" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}
