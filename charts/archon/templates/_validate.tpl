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

{{- $tp := int $v.model.tensorParallelSize -}}
{{- $pp := include "archon.vllmFlag" (dict "model" $v.model "flag" "pipeline-parallel-size" "short" "pp") -}}
{{- $dp := include "archon.vllmFlag" (dict "model" $v.model "flag" "data-parallel-size" "short" "dp") -}}
{{- if or (ne $pp "1") (ne $dp "1") -}}
{{- if not (and (regexMatch "^[1-9][0-9]*$" $pp) (regexMatch "^[1-9][0-9]*$" $dp)) -}}
{{- fail (printf "values: model.extraArgs/extraConfig set pipeline-parallel-size=%s, data-parallel-size=%s: vLLM takes whole numbers >= 1; fix: give each as a number" $pp $dp) -}}
{{- end -}}
{{- $want := mul $tp (int $pp) (int $dp) -}}
{{- if ne $want $gpus -}}
{{- fail (printf "values: model.tensorParallelSize=%d x pipeline-parallel-size=%s x data-parallel-size=%s (model.extraArgs/extraConfig) = %d GPUs but gpu.count=%d: vLLM runs one worker per GPU of the pod; fix: set gpu.count to %d" $tp $pp $dp $want $gpus $want) -}}
{{- end -}}
{{- else if ne $tp $gpus -}}
{{- fail (printf "values: model.tensorParallelSize=%d but gpu.count=%d: vLLM splits the model over exactly tensorParallelSize GPUs of the pod; fix: set both to the same number" $tp $gpus) -}}
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
{{- include "archon.validate.council" . -}}

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

{{- $managed := list "port" "revision" "served-model-name" "quantization" "dtype" "max-model-len" "gpu-memory-utilization" "max-num-seqs" "max-num-batched-tokens" "kv-cache-dtype" "enable-prefix-caching" "no-enable-prefix-caching" "enforce-eager" "tensor-parallel-size" "model" "host" "api-key" "runner" -}}
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


{{/*
The council and its memory: every role names an enabled archetype that can chat, the council's
model name is its own, the memory has a store and an embedding model, and the chart's Qdrant runs
only for that memory, keeps what it stores and lets only the gateway in without a key.
*/}}
{{- define "archon.validate.council" -}}
{{- $v := .Values -}}
{{- $c := $v.council -}}
{{- $q := $v.qdrant -}}
{{- if eq (toString ($v.model.runner | default "")) "pooling" -}}
{{- fail "values: model.runner=pooling on the server: the gateway, the helm test and the council chat with the base model; fix: remove model.runner and serve the embedding model as an instance archetype (mode: instance, instance.model.runner: pooling)" -}}
{{- end -}}
{{- $enabled := dict -}}
{{- range include "archon.archetypes.enabled" . | fromJsonArray -}}
{{- $runner := "" -}}
{{- if eq .mode "instance" }}{{ $runner = toString ((.instance.model | default dict).runner | default "") }}{{ end -}}
{{- $_ := set $enabled .name (dict "mode" .mode "runner" $runner) -}}
{{- end -}}
{{- if $c.enabled -}}
{{- if not (include "archon.gateway.enabled" .) -}}
{{- fail "values: council.enabled=true but the gateway is off (gateway.enabled=false, or auto with no enabled archetype): the council is a model of the gateway; fix: enable archetypes and set gateway.enabled: auto (or true)" -}}
{{- end -}}
{{- $roles := list (list "council.router.archetype" $c.router.archetype) (list "council.aggregator" $c.aggregator) (list "council.gate.archetype" $c.gate.archetype) (list "council.veto.critic" $c.veto.critic) (list "council.veto.escalateTo" $c.veto.escalateTo) -}}
{{- range $i, $name := $c.members -}}
{{- $roles = append $roles (list (printf "council.members[%d]" $i) $name) -}}
{{- end -}}
{{- range $roles -}}
{{- $key := index . 0 -}}
{{- $name := index . 1 -}}
{{- if $name -}}
{{- if not (hasKey $enabled $name) -}}
{{- fail (printf "values: %s=%s is not an enabled archetype (enabled: %s); fix: add an archetype named %s, enable it, or set %s to one of the enabled names (\"\" turns the role off)" $key $name (join ", " (keys $enabled | sortAlpha)) $name $key) -}}
{{- end -}}
{{- if eq (get $enabled $name).runner "pooling" -}}
{{- fail (printf "values: %s=%s is an embedding archetype (instance.model.runner: pooling): it serves /v1/embeddings and cannot chat; fix: name an archetype that generates text" $key $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- /* LiteLLM load-balances the model_list entries of one name (docs.litellm.ai/docs/proxy/load_balancing): a question for the council could land on one archetype, or the other way round. Disabled archetypes count too, so enabling one later cannot collide. */ -}}
{{- range $i, $a := $v.archetypes -}}
{{- if eq $a.name $c.modelName -}}
{{- fail (printf "values: council.modelName=%s is also archetypes[%d].name: the gateway routes by model name and LiteLLM would share that name's requests between the council and the archetype; fix: set council.modelName to a name of its own (default: council)" $c.modelName $i) -}}
{{- end -}}
{{- end -}}
{{- $served := include "archon.servedModelName" $v.model -}}
{{- if eq $served $c.modelName -}}
{{- fail (printf "values: council.modelName=%s is also the base model's served name (model.servedModelName, else model.name): the gateway routes by model name and LiteLLM would share that name's requests between the council and the base model; fix: set council.modelName to a name of its own (default: council)" $c.modelName) -}}
{{- end -}}
{{- if gt (int $c.router.minMembers) (int $c.router.maxMembers) -}}
{{- fail (printf "values: council.router.minMembers=%d is above council.router.maxMembers=%d: no choice of the router could be valid; fix: set minMembers <= maxMembers" (int $c.router.minMembers) (int $c.router.maxMembers)) -}}
{{- end -}}
{{- if $c.memory.enabled -}}
{{- if and (not $q.enabled) (not $c.memory.url) -}}
{{- fail "values: council.memory.enabled=true with qdrant.enabled=false and council.memory.url=\"\": the memory has nowhere to live; fix: set qdrant.enabled: true (the chart's own Qdrant) or council.memory.url to an external Qdrant" -}}
{{- end -}}
{{- $embed := $c.memory.embeddingArchetype -}}
{{- if not $embed -}}
{{- fail "values: council.memory.enabled=true but council.memory.embeddingArchetype=\"\": memories are stored as embeddings; fix: add an instance archetype with instance.model.runner: pooling (for example Qwen/Qwen3-Embedding-0.6B) and name it in council.memory.embeddingArchetype" -}}
{{- end -}}
{{- if not (hasKey $enabled $embed) -}}
{{- fail (printf "values: council.memory.embeddingArchetype=%s is not an enabled archetype (enabled: %s); fix: add an instance archetype named %s with instance.model.runner: pooling, or name an enabled one" $embed (join ", " (keys $enabled | sortAlpha)) $embed) -}}
{{- end -}}
{{- $e := get $enabled $embed -}}
{{- if or (ne $e.mode "instance") (ne $e.runner "pooling") -}}
{{- fail (printf "values: council.memory.embeddingArchetype=%s is not an embedding model (mode: %s, instance.model.runner: %q): only vLLM's pooling runner answers /v1/embeddings; fix: make %s mode: instance with instance.model.runner: pooling and an embedding model (for example Qwen/Qwen3-Embedding-0.6B)" $embed $e.mode $e.runner $embed) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $q.enabled (not (and $c.enabled $c.memory.enabled)) -}}
{{- fail (printf "values: qdrant.enabled=true with council.enabled=%v and council.memory.enabled=%v: only the council's memory uses the chart's Qdrant, so its StatefulSet and storage claim (kept on uninstall) would hold nothing; fix: set qdrant.enabled: false, or turn on council.enabled and council.memory.enabled" $c.enabled $c.memory.enabled) -}}
{{- end -}}
{{- if and $q.enabled $c.memory.url -}}
{{- fail (printf "values: qdrant.enabled=true and council.memory.url=%s: the council would use the external Qdrant and the chart's would hold nothing; fix: set council.memory.url: \"\" to use the chart's Qdrant, or qdrant.enabled: false" $c.memory.url) -}}
{{- end -}}
{{- if and $q.enabled (not (include "archon.qdrant.apiKeySecret" .)) (not $v.networkPolicy.enabled) -}}
{{- fail "values: qdrant.enabled=true with no API key (qdrant.apiKey.existingSecret=\"\" and apiKey.enabled=false) and networkPolicy.enabled=false: any pod in the cluster could read and overwrite the memory; fix: set qdrant.apiKey.existingSecret (or apiKey.enabled: true), or networkPolicy.enabled: true, which lets only the gateway in" -}}
{{- end -}}
{{- end -}}

{{/*
The value vLLM takes for one of its flags from model.extraConfig (dashed keys: the schema
refuses others), then model.extraArgs (which comes later on the command line and wins):
`--name value`, `--name=value`, the underscore spelling, or the short `-pp`/`-dp` form. "1"
when neither sets it.
*/}}
{{- define "archon.vllmFlag" -}}
{{- $value := "1" -}}
{{- $long := .flag -}}
{{- $names := list (printf "--%s" $long) (printf "--%s" (replace "-" "_" $long)) (printf "-%s" .short) -}}
{{- with .model.extraConfig -}}
{{- if hasKey . $long -}}{{- $value = toString (index . $long) -}}{{- end -}}
{{- end -}}
{{- $args := .model.extraArgs | default list -}}
{{- range $i, $raw := $args -}}
{{- $arg := toString $raw -}}
{{- range $name := $names -}}
{{- if and (eq $arg $name) (lt (add1 $i) (len $args)) -}}
{{- $value = toString (index $args (add1 $i)) -}}
{{- else if hasPrefix (printf "%s=" $name) $arg -}}
{{- $value = trimPrefix (printf "%s=" $name) $arg -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $value -}}
{{- end -}}
