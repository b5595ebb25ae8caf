{{/*
vLLM engine settings as the YAML file `vllm serve --config` reads: keys in vLLM's command-line
spelling (`max-model-len`). Rendered from a model map (.Values.model, or an archetype instance's
model later), so every server built from these templates reads its settings the same way.
Call with (dict "root" $ "model" .Values.model); an optional "lora" map (vLLM LoRA settings from
the archetypes) is merged in.
*/}}
{{- define "archon.server.configFile" -}}
{{- $m := .model -}}
{{- $cfg := dict "port" 8000 "served-model-name" (include "archon.servedModelName" $m) "revision" $m.revision "max-model-len" (int $m.maxModelLen) "gpu-memory-utilization" $m.gpuMemoryUtilization "kv-cache-dtype" $m.kvCacheDtype "tensor-parallel-size" (int $m.tensorParallelSize) -}}
{{- with $m.quantization }}{{ $_ := set $cfg "quantization" . }}{{ end -}}
{{- with $m.dtype }}{{ $_ := set $cfg "dtype" . }}{{ end -}}
{{- /* `pooling` makes vLLM serve /v1/embeddings (vllm/config/model.py, ModelConfig.runner). */ -}}
{{- with $m.runner }}{{ $_ := set $cfg "runner" . }}{{ end -}}
{{- with $m.maxNumSeqs }}{{ $_ := set $cfg "max-num-seqs" (int .) }}{{ end -}}
{{- with $m.maxNumBatchedTokens }}{{ $_ := set $cfg "max-num-batched-tokens" (int .) }}{{ end -}}
{{- /*
vLLM's config loader turns `key: true` into `--key` but drops `key: false` (older releases) or
passes `--key false` (newer ones), which a boolean flag rejects; `no-key: true` becomes
`--no-key`, which every release with BooleanOptionalAction flags accepts.
Source: vllm/utils FlexibleArgumentParser._load_config_file.
*/ -}}
{{- if $m.enablePrefixCaching -}}
{{- $_ := set $cfg "enable-prefix-caching" true -}}
{{- else -}}
{{- $_ := set $cfg "no-enable-prefix-caching" true -}}
{{- end -}}
{{- if $m.enforceEager -}}
{{- $_ := set $cfg "enforce-eager" true -}}
{{- end -}}
{{- $cfg = merge $cfg (.lora | default dict) ($m.extraConfig | default dict) -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* ConfigMap holding the config file. Call with (dict "root" $ "name" "server" "model" .Values.model). */}}
{{- define "archon.server.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "archon.componentName" (dict "root" .root "component" (printf "%s-config" .name)) }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "archon.labels" (dict "root" .root "component" .name) | nindent 4 }}
  annotations:
    # ArgoCD applies it before the Deployment that mounts it (wave 0).
    argocd.argoproj.io/sync-wave: "-1"
data:
  vllm-config.yaml: |
    {{- include "archon.server.configFile" . | nindent 4 }}
{{- end -}}
