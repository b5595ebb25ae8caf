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
{{- $models = append $models (dict "model_name" .name "litellm_params" $params "model_info" $info) -}}
{{- end -}}
{{- $config := dict "model_list" $models "litellm_settings" (dict "callbacks" "archon_hook.proxy_handler_instance" "request_timeout" (int $v.gateway.timeoutSeconds) "num_retries" 0) -}}
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
