{{/*
The LiteLLM config: first the base model under the server's served name (`archon_mode: base`, no
system prompt, no sampling defaults), so the gateway, and the Ingress in front of it, still serve
it; then one model_list entry per enabled archetype, named as the archetype, pointing at the vLLM
server that answers it (`openai/<name vLLM serves>` at its Service), with the archetype's sampling
as defaults (a client's own values win). Keys are LiteLLM's proxy config
(docs.litellm.ai/docs/proxy/configs).
*/}}
{{- define "archon.gateway.config" -}}
{{- $v := .Values -}}
{{- $base := dict "name" (include "archon.servedModelName" $v.model) "mode" "base" "description" "The base model, without an archetype's system prompt or sampling." -}}
{{- $models := list -}}
{{- range prepend (include "archon.archetypes.enabled" . | fromJsonArray) $base -}}
{{- $params := dict "model" (printf "openai/%s" (include "archon.archetypes.upstreamModel" (dict "root" $ "archetype" .))) "api_base" (include "archon.archetypes.apiBase" (dict "root" $ "archetype" .)) -}}
{{- /* vLLM checks the key when apiKey is on; the OpenAI client wants some key either way. */ -}}
{{- $_ := set $params "api_key" (ternary "os.environ/ARCHON_UPSTREAM_API_KEY" "no-key" $v.apiKey.enabled) -}}
{{- $_ := set $params "timeout" (int $v.gateway.timeoutSeconds) -}}
{{- range $key, $value := (.sampling | default dict) }}{{ $_ := set $params $key $value }}{{ end -}}
{{- $info := dict "archon_mode" .mode "description" (.description | default "") -}}
{{- /* An embedding archetype answers /v1/embeddings only: clients and the council skip it. */ -}}
{{- with (dig "instance" "model" "runner" "" .) }}{{ $_ := set $info "archon_runner" . }}{{ end -}}
{{- $models = append $models (dict "model_name" .name "litellm_params" $params "model_info" $info) -}}
{{- end -}}
{{- $settings := dict "callbacks" "archon_hook.proxy_handler_instance" "request_timeout" (int $v.gateway.timeoutSeconds) "num_retries" 0 -}}
{{- if $v.metrics.serviceMonitor.enabled -}}
{{- /* LiteLLM's prometheus callback serves /metrics; with a master key it asks for one there too, since the gateway's Ingress would otherwise publish it. */ -}}
{{- $_ := set $settings "success_callback" (list "prometheus") -}}
{{- if include "archon.gateway.masterKeySecret" . -}}
{{- $_ := set $settings "require_auth_for_metrics_endpoint" true -}}
{{- end -}}
{{- end -}}
{{- if $v.council.enabled -}}
{{- /* The council is a LiteLLM custom handler (files/archon_council.py, reached through the hook) under the provider `archon`. */ -}}
{{- $council := dict "model_name" $v.council.modelName "litellm_params" (dict "model" "archon/council" "timeout" (int $v.council.timeoutSeconds)) "model_info" (dict "archon_mode" "council" "description" "The whole council: router, archetypes, aggregation, veto, gate and memory, as one model.") -}}
{{- $models = append $models $council -}}
{{- $_ := set $settings "custom_provider_map" (list (dict "provider" "archon" "custom_handler" "archon_hook.council_handler")) -}}
{{- end -}}
{{- $config := dict "model_list" $models "litellm_settings" $settings -}}
{{- if include "archon.gateway.masterKeySecret" . -}}
{{- $_ := set $config "general_settings" (dict "master_key" "os.environ/LITELLM_MASTER_KEY") -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* What the hook adds per archetype (system prompt, guided decoding), as JSON. */}}
{{- define "archon.gateway.archetypes" -}}
{{- $table := dict -}}
{{- range include "archon.archetypes.enabled" . | fromJsonArray -}}
{{- $entry := dict -}}
{{- with .systemPrompt }}{{ $_ := set $entry "systemPrompt" . }}{{ end -}}
{{- with .guidedDecoding }}{{ $_ := set $entry "guidedDecoding" . }}{{ end -}}
{{- $_ := set $table .name $entry -}}
{{- end -}}
{{- toPrettyJson $table -}}
{{- end -}}

{{/* Secret holding the gateway's master key: its own, else the API key's, else none (open). */}}
{{- define "archon.gateway.masterKeySecret" -}}
{{- $v := .Values -}}
{{- if $v.gateway.masterKey.existingSecret -}}
{{- $v.gateway.masterKey.existingSecret -}}
{{- else if $v.apiKey.enabled -}}
{{- include "archon.apiKeySecret" . -}}
{{- end -}}
{{- end -}}

{{- define "archon.gateway.masterKeyKey" -}}
{{- if .Values.gateway.masterKey.existingSecret -}}
{{- .Values.gateway.masterKey.key -}}
{{- else -}}
{{- .Values.apiKey.key -}}
{{- end -}}
{{- end -}}

{{/*
The council's settings for files/archon_council.py, as JSON in the shape of the `council:` values.
Members default to every enabled archetype but the router and the embedding models (any instance
with the pooling runner, named by the memory or not: it answers /v1/embeddings only); the
aggregator's context is the maxModelLen of the server that answers it.
*/}}
{{- define "archon.gateway.council" -}}
{{- $v := .Values -}}
{{- $c := $v.council -}}
{{- $enabled := include "archon.archetypes.enabled" . | fromJsonArray -}}
{{- $members := $c.members -}}
{{- if not $members -}}
{{- range $enabled -}}
{{- $pooling := and (eq .mode "instance") (eq (toString (dig "instance" "model" "runner" "" .)) "pooling") -}}
{{- if not (or $pooling (eq .name $c.router.archetype)) -}}
{{- $members = append $members .name -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $descriptions := dict -}}
{{- $context := int $v.model.maxModelLen -}}
{{- range $enabled -}}
{{- if has .name $members }}{{ $_ := set $descriptions .name (.description | default "") }}{{ end -}}
{{- if and (eq .name $c.aggregator) (eq .mode "instance") -}}
{{- $context = int .instance.model.maxModelLen -}}
{{- end -}}
{{- end -}}
{{- $memory := dict "enabled" $c.memory.enabled "topK" (int $c.memory.topK) "minScore" (float64 $c.memory.minScore) "collection" $c.memory.collection "embeddingModel" $c.memory.embeddingArchetype "url" (include "archon.qdrant.url" .) -}}
{{- $settings := dict "members" $members "descriptions" $descriptions "router" (dict "archetype" $c.router.archetype "minMembers" (int $c.router.minMembers) "maxMembers" (int $c.router.maxMembers)) "aggregator" $c.aggregator "gate" (dict "archetype" $c.gate.archetype "invariants" $c.gate.invariants) "veto" (dict "critic" $c.veto.critic "escalateTo" $c.veto.escalateTo "maxDepth" (int $c.veto.maxDepth)) "memory" $memory "timeoutSeconds" (int $c.timeoutSeconds) "contextTokens" $context -}}
{{- toPrettyJson $settings -}}
{{- end -}}
