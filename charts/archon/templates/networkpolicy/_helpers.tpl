{{/* Components of the vLLM pods: the server and every enabled instance archetype. */}}
{{- define "archon.networkPolicy.vllmComponents" -}}
{{- $out := list "server" -}}
{{- range include "archon.archetypes.enabled" . | fromJsonArray -}}
{{- if eq .mode "instance" }}{{ $out = append $out (include "archon.archetypes.component" .name) }}{{ end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* A peer: the release's pods of the given components (same namespace). */}}
{{- define "archon.networkPolicy.pods" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ include "archon.name" .root }}
      app.kubernetes.io/instance: {{ .root.Release.Name }}
    matchExpressions:
      - key: app.kubernetes.io/component
        operator: In
        values:
          {{- toYaml .components | nindent 10 }}
{{- end -}}

{{/* A peer: every pod of one namespace, by its immutable name label. */}}
{{- define "archon.networkPolicy.namespace" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ . }}
{{- end -}}

{{/* Any address but the blocked ones (the cloud metadata service). */}}
{{- define "archon.networkPolicy.anywhere" -}}
{{- $v4 := list -}}
{{- $v6 := list -}}
{{- range .Values.networkPolicy.blockedCidrs -}}
{{- if contains ":" . }}{{ $v6 = append $v6 . }}{{ else }}{{ $v4 = append $v4 . }}{{ end -}}
{{- end -}}
- ipBlock:
    cidr: 0.0.0.0/0
    {{- with $v4 }}
    except:
      {{- toYaml . | nindent 6 }}
    {{- end }}
- ipBlock:
    cidr: ::/0
    {{- with $v6 }}
    except:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end -}}

{{/* Name resolution, wherever the cluster's resolver runs (a pod, or a node-local cache). */}}
{{- define "archon.networkPolicy.dnsEgress" -}}
- ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end -}}

{{/* Metadata of one policy. Call with (dict "root" $ "component" "server"). */}}
{{- define "archon.networkPolicy.metadata" -}}
name: {{ include "archon.componentName" (dict "root" .root "component" .component) }}
namespace: {{ .root.Release.Namespace }}
labels:
  {{- include "archon.labels" (dict "root" .root "component" .component) | nindent 2 }}
annotations:
  # Before the pods it guards (wave 0).
  argocd.argoproj.io/sync-wave: "-1"
{{- end -}}
