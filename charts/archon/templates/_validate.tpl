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

{{- /*
Every GPU Deployment (the server and each enabled instance archetype) shares replicaCount and the
strategy, and Helm rolls them all at once: each one adds its surge pods while its old pods still
hold their GPUs.
*/ -}}
{{- $deployments := include "archon.gpuDeployments" . | fromJsonArray -}}
{{- if and (gt $surge 0) (eq (len $deployments) 1) (gt (mul (add $replicas $surge) $gpus) $capacity) -}}
{{- fail (printf "values: strategy.type=RollingUpdate with a surge of %d pod(s) needs (replicaCount=%d + %d) x gpu.count=%d = %d GPUs but gpu.nodeCapacity=%d: the new pod waits forever for a free GPU and the rollout never ends; fix: set strategy.type: Recreate (or strategy.rollingUpdate.maxSurge: 0 with maxUnavailable: 1)" $surge $replicas $surge $gpus (mul (add $replicas $surge) $gpus) $capacity) -}}
{{- end -}}
{{- if and (gt $surge 0) (gt (len $deployments) 1) -}}
{{- $perPod := 0 -}}
{{- $terms := list -}}
{{- range $deployments -}}
{{- $perPod = add $perPod (int .gpus) -}}
{{- $terms = append $terms (printf "%s=%d" .key (int .gpus)) -}}
{{- end -}}
{{- $rollout := mul (add $replicas $surge) $perPod -}}
{{- if gt $rollout $capacity -}}
{{- fail (printf "values: strategy.type=RollingUpdate with a surge of %d pod(s) per GPU Deployment needs (replicaCount=%d + %d) x (%s) = %d GPUs but gpu.nodeCapacity=%d: the server and every instance archetype roll at once, each new pod waits forever for a free GPU and the rollout never ends; fix: set strategy.type: Recreate or raise gpu.nodeCapacity to %d (or strategy.rollingUpdate.maxSurge: 0 with maxUnavailable: 1)" $surge $replicas $surge (join " + " $terms) $rollout $capacity $rollout) -}}
{{- end -}}
{{- end -}}

{{- if eq $v.strategy.type "RollingUpdate" -}}
{{- /* Kubernetes' defaults are 25% each; "0" and "0%" are both zero (ValidateRollingUpdateDeployment). */ -}}
{{- $rolling := $v.strategy.rollingUpdate | default dict -}}
{{- $maxSurge := "25%" -}}
{{- if hasKey $rolling "maxSurge" }}{{ $maxSurge = toString $rolling.maxSurge }}{{ end -}}
{{- $maxUnavailable := "25%" -}}
{{- if hasKey $rolling "maxUnavailable" }}{{ $maxUnavailable = toString $rolling.maxUnavailable }}{{ end -}}
{{- if and (has $maxSurge (list "0" "0%")) (has $maxUnavailable (list "0" "0%")) -}}
{{- fail (printf "values: strategy.rollingUpdate.maxSurge=%s and strategy.rollingUpdate.maxUnavailable=%s: the API server refuses the Deployment (maxUnavailable may not be 0 when maxSurge is 0), such a rollout could neither add a new pod nor remove an old one; fix: set strategy.rollingUpdate.maxUnavailable: 1 (or strategy.type: Recreate)" $maxSurge $maxUnavailable) -}}
{{- end -}}
{{- end -}}

{{- if and (eq $v.strategy.type "Recreate") $v.strategy.rollingUpdate -}}
{{- fail "values: strategy.rollingUpdate is set with strategy.type=Recreate: Kubernetes rejects it; fix: remove strategy.rollingUpdate (write `rollingUpdate: null` in an override file)" -}}
{{- end -}}

{{- $startup := mul (int $v.probes.startup.periodSeconds) (int $v.probes.startup.failureThreshold) -}}
{{- if le (int $v.progressDeadlineSeconds) $startup -}}
{{- fail (printf "values: progressDeadlineSeconds=%d but the startup probe allows %d s (probes.startup.periodSeconds x failureThreshold): Kubernetes would mark a slow first start failed (helm --wait fails, ArgoCD shows Degraded) while the probe still waits, and the download comes before it; fix: set progressDeadlineSeconds above %d (default 3600)" (int $v.progressDeadlineSeconds) $startup $startup) -}}
{{- end -}}

{{- include "archon.validate.exposure" . -}}

{{- if $v.ingress.enabled -}}
{{- if not $v.ingress.hosts -}}
{{- fail "values: ingress.enabled=true but ingress.hosts is empty: an Ingress without rules routes nothing; fix: set ingress.hosts: [{host: archon.home.local, paths: [{path: /, pathType: Prefix}]}]" -}}
{{- end -}}
{{- $hosts := list -}}
{{- range $v.ingress.hosts }}{{ $hosts = append $hosts .host }}{{ end -}}
{{- range $i, $tls := $v.ingress.tls -}}
{{- range $j, $host := $tls.hosts -}}
{{- if not (has $host $hosts) -}}
{{- fail (printf "values: ingress.tls[%d].hosts[%d]=%s is not a host of ingress.hosts (%s): the Ingress has no rule for it, so its certificate would serve nothing; fix: add it to ingress.hosts or correct the name" $i $j $host (join ", " $hosts)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- range $section := list "requests" "limits" -}}
{{- range $name, $_ := (get ($v.resources | default dict) $section | default dict) -}}
{{- if or (hasSuffix "/gpu" $name) (eq $name $v.gpu.nvidia.resourceName) (eq $name $v.gpu.amd.resourceName) -}}
{{- fail (printf "values: resources.%s.%s is set: the GPU request comes from gpu.vendor and gpu.count; fix: remove it from resources and set gpu.count" $section $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- $owned := include "archon.labels" (dict "root" . "component" "server") | fromYaml -}}
{{- range $key, $_ := $v.podLabels -}}
{{- if hasKey $owned $key -}}
{{- fail (printf "values: podLabels.%s is set but the chart sets this pod label itself (selector and standard labels): a second %s would be a duplicate key in the pod template; fix: remove %s from podLabels and use a label of your own" $key $key $key) -}}
{{- end -}}
{{- end -}}
{{- if hasKey ($v.podAnnotations | default dict) "checksum/config" -}}
{{- fail "values: podAnnotations.checksum/config is set but the chart sets it (the hash of the engine config that rolls the pod): a second one would be a duplicate key in the pod template; fix: remove checksum/config from podAnnotations" -}}
{{- end -}}

{{- $managed := list "port" "revision" "served-model-name" "quantization" "dtype" "max-model-len" "gpu-memory-utilization" "max-num-seqs" "max-num-batched-tokens" "kv-cache-dtype" "enable-prefix-caching" "no-enable-prefix-caching" "enforce-eager" "tensor-parallel-size" "model" "host" "api-key" -}}
{{- range $key, $_ := $v.model.extraConfig -}}
{{- if has $key $managed -}}
{{- fail (printf "values: model.extraConfig.%s is managed by the chart; fix: set it through the model.* value of the same name (api-key: apiKey.existingSecret) and remove it from model.extraConfig" $key) -}}
{{- end -}}
{{- end -}}
{{- /*
vLLM reads model.extraArgs after the config file, so a managed flag there would win over the value
the chart (and the preflight) set: refused like the same key in model.extraConfig.
*/ -}}
{{- range $arg := $v.model.extraArgs -}}
{{- $flag := toString $arg -}}
{{- if hasPrefix "--" $flag -}}
{{- $name := trimPrefix "--" $flag | splitList "=" | first | replace "_" "-" -}}
{{- if has $name $managed -}}
{{- fail (printf "values: model.extraArgs.%s is managed by the chart: vLLM would take it over the config file the preflight checked; fix: set it through the model.* value of the same name (api-key: apiKey.existingSecret) and remove --%s from model.extraArgs" $name $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /*
The server's environment is the chart's: the same name in extraEnv would silently win (the last
entry of a duplicate name does), for example HF_HUB_OFFLINE=0 letting the server reach the Hub.
*/ -}}
{{- $ownedEnv := list "HF_HUB_OFFLINE" "HF_MODULES_CACHE" "VLLM_NO_USAGE_STATS" "DO_NOT_TRACK" "VLLM_API_KEY" -}}
{{- range (include "archon.server.homeEnv" "/home" | fromYamlArray) -}}
{{- $ownedEnv = append $ownedEnv .name -}}
{{- end -}}
{{- range $env := $v.extraEnv -}}
{{- if has $env.name $ownedEnv -}}
{{- fail (printf "values: extraEnv.%s is set but the chart sets %s on the server itself (%s): a second entry would silently win; fix: remove %s from extraEnv" $env.name $env.name (join ", " $ownedEnv) $env.name) -}}
{{- end -}}
{{- end -}}
{{- /*
With lora archetypes the chart writes vLLM's LoRA settings itself and they would win over these;
without them, model.extraConfig may enable LoRA by hand.
*/ -}}
{{- $lora := include "archon.archetypes.loraSettings" . | fromJson -}}
{{- if $lora -}}
{{- range $key, $_ := $v.model.extraConfig -}}
{{- if hasKey $lora $key -}}
{{- fail (printf "values: model.extraConfig.%s is set while lora archetypes are enabled: the chart writes enable-lora, lora-modules, max-loras and max-lora-rank from archetypes[].lora and would drop this one; fix: remove %s from model.extraConfig and declare each adapter as an archetype with mode: lora (lora.source, lora.rank)" $key $key) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}


{{/*
Nothing reaches the GPU from outside the cluster without a key, and nothing outside the namespace
reaches a vLLM route the key does not guard: vLLM's --api-key covers only the `/v1` prefix (and a
few others), while /metrics, /tokenize, /invocations, /pooling, /score and more answer anyone
(vLLM docs/usage/security.md).
*/}}
{{- define "archon.validate.exposure" -}}
{{- $v := .Values -}}
{{- $exposed := list -}}
{{- if $v.ingress.enabled }}{{ $exposed = append $exposed "ingress.enabled=true" }}{{ end -}}
{{- if has $v.service.type (list "NodePort" "LoadBalancer") }}{{ $exposed = append $exposed (printf "service.type=%s" $v.service.type) }}{{ end -}}
{{- if and $exposed (not $v.apiKey.enabled) (not $v.apiKey.allowUnauthenticatedExposure) -}}
{{- fail (printf "values: %s with apiKey.enabled=false exposes an unauthenticated GPU outside the cluster; fix: set apiKey.enabled=true (the chart creates the key when apiKey.existingSecret is empty), or apiKey.allowUnauthenticatedExposure=true on a trusted LAN only" (join " and " $exposed)) -}}
{{- end -}}
{{- if and $v.ingress.enabled (ne (include "archon.gateway.enabled" .) "true") (not $v.apiKey.allowUnauthenticatedExposure) -}}
{{- range $i, $host := $v.ingress.hosts -}}
{{- range $j, $path := $host.paths -}}
{{- if not (or (eq $path.path "/v1") (hasPrefix "/v1/" $path.path)) -}}
{{- fail (printf "values: ingress.hosts[%d].paths[%d].path=%s sends requests straight to vLLM, whose --api-key guards only /v1 (/metrics, /tokenize, /invocations and more answer anyone); fix: set the path to /v1 (pathType: Prefix), or run the gateway (gateway.enabled: true), which checks its key on every route" $i $j $path.path) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
