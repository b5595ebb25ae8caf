{{/*
Archetypes: personas of the model, each called by its name through the gateway. The helpers below
turn the `archetypes` list into what the server, the instances and the gateway need; they return
JSON (fromJson on the caller's side) because a named template can only return text.
*/}}

{{/* The enabled archetypes, as a JSON list (`enabled` defaults to true). */}}
{{- define "archon.archetypes.enabled" -}}
{{- $on := list -}}
{{- range .Values.archetypes -}}
{{- if or (not (hasKey . "enabled")) .enabled -}}
{{- $on = append $on . -}}
{{- end -}}
{{- end -}}
{{- toJson $on -}}
{{- end -}}

{{/* "true" when the gateway runs: `auto` means "when any archetype is enabled". */}}
{{- define "archon.gateway.enabled" -}}
{{- $mode := .Values.gateway.enabled -}}
{{- if kindIs "bool" $mode -}}
{{- if $mode }}true{{ end -}}
{{- else if eq (toString $mode) "auto" -}}
{{- if include "archon.archetypes.enabled" . | fromJsonArray }}true{{ end -}}
{{- end -}}
{{- end -}}

{{/* Component name of an instance archetype's Deployment, Service and config. */}}
{{- define "archon.archetypes.component" -}}
{{- printf "archetype-%s" . -}}
{{- end -}}

{{/*
The vLLM LoRA settings of the shared server, as a JSON map in vLLM's config-file spelling; empty
when no lora archetype is enabled. --max-loras is the number of adapters (each holds a slot on the
GPU), --max-lora-rank the largest rank rounded up to one vLLM accepts.
Source: vllm LoRAConfig possible_max_ranks (8, 16, 32, 64, 128, 256; newer releases add 320 and
512); vLLM's own default rank is 16.
*/}}
{{- define "archon.archetypes.loraSettings" -}}
{{- $modules := list -}}
{{- $rank := 0 -}}
{{- range include "archon.archetypes.enabled" . | fromJsonArray -}}
{{- if eq .mode "lora" -}}
{{- $modules = append $modules (printf "%s=%s" .name .lora.source) -}}
{{- $r := int (.lora.rank | default 16) -}}
{{- if gt $r $rank }}{{ $rank = $r }}{{ end -}}
{{- end -}}
{{- end -}}
{{- if $modules -}}
{{- $supported := 256 -}}
{{- range list 256 128 64 32 16 8 -}}
{{- if le $rank . }}{{ $supported = . }}{{ end -}}
{{- end -}}
{{- toJson (dict "enable-lora" true "lora-modules" $modules "max-loras" (len $modules) "max-lora-rank" $supported) -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{/* Hub repositories of the enabled LoRA adapters: the download init container fetches them. */}}
{{- define "archon.archetypes.loraRepos" -}}
{{- $repos := list -}}
{{- range include "archon.archetypes.enabled" . | fromJsonArray -}}
{{- if and (eq .mode "lora") (not (hasPrefix "/" .lora.source)) -}}
{{- $repos = append $repos .lora.source -}}
{{- end -}}
{{- end -}}
{{- toJson $repos -}}
{{- end -}}

{{/*
An instance archetype's model: its `instance.model` over the top-level `model`. What names the
checkpoint (repository, revision, served name, quantization, dtype, file patterns, extra settings)
is never inherited: a 0.5B router must not load with the 14B model's `quantization: gptq`. Nor is
the runner: an embedding model (`runner: pooling`) is one instance's own.
Call with (dict "root" $ "archetype" .).
*/}}
{{- define "archon.archetypes.instanceModel" -}}
{{- $a := .archetype -}}
{{- $own := dict "revision" "main" "servedModelName" $a.name "quantization" "" "dtype" "" "runner" "" "allowPatterns" list "extraArgs" list "extraConfig" dict -}}
{{- /* set, not merge: sprig's merge treats "" and false as unset and would inherit them. */ -}}
{{- $model := deepCopy .root.Values.model -}}
{{- range $key, $value := $own }}{{ $_ := set $model $key $value }}{{ end -}}
{{- range $key, $value := $a.instance.model }}{{ $_ := set $model $key $value }}{{ end -}}
{{- toJson $model -}}
{{- end -}}

{{/*
The GPU Deployments of the release, as a JSON list of {key, gpus}: the server (gpu.count) and each
enabled instance archetype (its instance.gpu.count, default 1). They share replicaCount and the
strategy.
*/}}
{{- define "archon.gpuDeployments" -}}
{{- $out := list (dict "key" "gpu.count" "gpus" (int .Values.gpu.count)) -}}
{{- range include "archon.archetypes.enabled" . | fromJsonArray -}}
{{- if eq .mode "instance" -}}
{{- $count := int ((.instance.gpu | default dict).count | default 1) -}}
{{- $out = append $out (dict "key" (printf "archetypes[name=%s].instance.gpu.count" .name) "gpus" $count) -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Service URL of the vLLM server that answers one archetype, for the gateway. */}}
{{- define "archon.archetypes.apiBase" -}}
{{- $component := "server" -}}
{{- if eq .archetype.mode "instance" -}}
{{- $component = include "archon.archetypes.component" .archetype.name -}}
{{- end -}}
{{- printf "http://%s:%d/v1" (include "archon.componentName" (dict "root" .root "component" $component)) (int .root.Values.service.port) -}}
{{- end -}}

{{/* Name the vLLM server knows an archetype by (its LoRA module, its instance's model, or the base model). */}}
{{- define "archon.archetypes.upstreamModel" -}}
{{- if eq .archetype.mode "lora" -}}
{{- .archetype.name -}}
{{- else if eq .archetype.mode "instance" -}}
{{- include "archon.servedModelName" (include "archon.archetypes.instanceModel" . | fromJson) -}}
{{- else -}}
{{- include "archon.servedModelName" .root.Values.model -}}
{{- end -}}
{{- end -}}

{{/*
Refuse archetype lists that render but cannot run. One line each: key, value, why, fix.
*/}}
{{- define "archon.archetypes.validate" -}}
{{- $v := .Values -}}
{{- $seen := dict -}}
{{- range $i, $a := $v.archetypes -}}
{{- if hasKey $seen $a.name -}}
{{- fail (printf "values: archetypes[%d].name=%q is also archetypes[%d].name: the gateway routes by name; fix: give every archetype a unique name" $i $a.name (int (get $seen $a.name))) -}}
{{- end -}}
{{- $_ := set $seen $a.name $i -}}
{{- if eq $a.name (include "archon.servedModelName" $v.model) -}}
{{- fail (printf "values: archetypes[%d].name=%q is the served name of the base model: the gateway would list it twice; fix: rename the archetype" $i $a.name) -}}
{{- end -}}
{{- end -}}
{{- $enabled := include "archon.archetypes.enabled" . | fromJsonArray -}}
{{- if and $enabled (not (include "archon.gateway.enabled" .)) -}}
{{- fail "values: gateway.enabled=false with enabled archetypes: only the gateway adds their system prompts and routes their names; fix: set gateway.enabled: auto (or disable the archetypes)" -}}
{{- end -}}
{{- $gpus := mul (int $v.replicaCount) (int $v.gpu.count) -}}
{{- range $enabled -}}
{{- if eq .mode "instance" -}}
{{- $count := int ((.instance.gpu | default dict).count | default 1) -}}
{{- $m := include "archon.archetypes.instanceModel" (dict "root" $ "archetype" .) | fromJson -}}
{{- if ne (int $m.tensorParallelSize) $count -}}
{{- fail (printf "values: archetypes[name=%s].instance.model.tensorParallelSize=%d but instance.gpu.count=%d; fix: set both to the same number" .name (int $m.tensorParallelSize) $count) -}}
{{- end -}}
{{- $gpus = add $gpus (mul (int $v.replicaCount) $count) -}}
{{- end -}}
{{- end -}}
{{- $instances := list -}}
{{- range $enabled }}{{ if eq .mode "instance" }}{{ $instances = append $instances .name }}{{ end }}{{ end -}}
{{- if and $instances $v.persistence.enabled (not $v.persistence.existingClaim) (has "ReadWriteOncePod" $v.persistence.accessModes) -}}
{{- fail (printf "values: persistence.accessModes contains ReadWriteOncePod with the instance archetype(s) %s enabled: the server and every instance pod mount the model-cache claim and ReadWriteOncePod lets only one pod mount it, so the others stay Pending; fix: set persistence.accessModes: [ReadWriteOnce] (the pods share the one GPU node) or make the instance archetypes mode: prompt" (join ", " $instances)) -}}
{{- end -}}
{{- if gt $gpus (int $v.gpu.nodeCapacity) -}}
{{- fail (printf "values: the server and the instance archetypes request %d GPUs but gpu.nodeCapacity=%d: the extra pods stay Pending forever; fix: share the card (NVIDIA time-slicing, see docs/archetypes.md) and raise gpu.nodeCapacity to the GPU slots the node advertises, or use mode: prompt" $gpus (int $v.gpu.nodeCapacity)) -}}
{{- end -}}
{{- end -}}
