{{/*
Refuse value combinations that render fine but can never run. Each message is one line: the values
keys, the bad values, why, and the fix. values.schema.json checks single values; this checks
combinations.
*/}}
{{- define "archon.validate" -}}
{{- $v := .Values -}}
{{- $gpus := int $v.gpu.count -}}
{{- $capacity := int $v.gpu.nodeCapacity -}}
{{- $replicas := int $v.replicaCount -}}
{{- $surge := include "archon.surgePods" . | int -}}

{{- if ne (int $v.model.tensorParallelSize) $gpus -}}
{{- fail (printf "values: model.tensorParallelSize=%d but gpu.count=%d: vLLM splits the model over exactly tensorParallelSize GPUs of the pod; fix: set both to the same number" (int $v.model.tensorParallelSize) $gpus) -}}
{{- end -}}

{{- if gt (mul $replicas $gpus) $capacity -}}
{{- fail (printf "values: replicaCount=%d x gpu.count=%d needs %d GPUs but gpu.nodeCapacity=%d: the extra pods stay Pending forever; fix: lower replicaCount or raise gpu.nodeCapacity to the GPUs the node really has" $replicas $gpus (mul $replicas $gpus) $capacity) -}}
{{- end -}}

{{- if and (gt $surge 0) (gt (mul (add $replicas $surge) $gpus) $capacity) -}}
{{- fail (printf "values: strategy.type=RollingUpdate with a surge of %d pod(s) needs (replicaCount=%d + %d) x gpu.count=%d = %d GPUs but gpu.nodeCapacity=%d: the new pod waits forever for a free GPU and the rollout never ends; fix: set strategy.type: Recreate (or strategy.rollingUpdate.maxSurge: 0 with maxUnavailable: 1)" $surge $replicas $surge $gpus (mul (add $replicas $surge) $gpus) $capacity) -}}
{{- end -}}

{{- if and (eq $v.strategy.type "Recreate") $v.strategy.rollingUpdate -}}
{{- fail "values: strategy.rollingUpdate is set with strategy.type=Recreate: Kubernetes rejects it; fix: remove strategy.rollingUpdate (write `rollingUpdate: null` in an override file)" -}}
{{- end -}}

{{- if and $v.apiKey.enabled (not $v.apiKey.existingSecret) -}}
{{- fail "values: apiKey.enabled=true but apiKey.existingSecret is empty: the key is read from a Secret, never from values; fix: create one (kubectl create secret generic archon-api-key --from-literal=api-key=...) and set apiKey.existingSecret" -}}
{{- end -}}

{{- range $section := list "requests" "limits" -}}
{{- range $name, $_ := (get ($v.resources | default dict) $section | default dict) -}}
{{- if or (hasSuffix "/gpu" $name) (eq $name $v.gpu.nvidia.resourceName) (eq $name $v.gpu.amd.resourceName) -}}
{{- fail (printf "values: resources.%s.%s is set: the GPU request comes from gpu.vendor and gpu.count; fix: remove it from resources and set gpu.count" $section $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- $managed := list "port" "revision" "served-model-name" "quantization" "dtype" "max-model-len" "gpu-memory-utilization" "max-num-seqs" "max-num-batched-tokens" "kv-cache-dtype" "enable-prefix-caching" "no-enable-prefix-caching" "enforce-eager" "tensor-parallel-size" "model" "host" "api-key" -}}
{{- range $key, $_ := $v.model.extraConfig -}}
{{- if has $key $managed -}}
{{- fail (printf "values: model.extraConfig.%s is managed by the chart; fix: set it through the model.* value of the same name (api-key: apiKey.existingSecret) and remove it from model.extraConfig" $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
