{{/* Service in front of one server. Call with (dict "root" $ "name" "server"). */}}
{{- define "archon.server.service" -}}
{{- $v := .root.Values -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "archon.componentName" (dict "root" .root "component" .name) }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "archon.labels" (dict "root" .root "component" .name) | nindent 4 }}
  annotations:
    argocd.argoproj.io/sync-wave: "0"
spec:
  type: {{ $v.service.type }}
  selector:
    {{- include "archon.selectorLabels" (dict "root" .root "component" .name) | nindent 4 }}
  ports:
    - name: http
      port: {{ $v.service.port }}
      targetPort: http
      protocol: TCP
{{- end -}}
