{{/*
A vLLM OpenAI server: Deployment with a download init container and the server container.
Call with (dict "root" $ "name" "server" "model" .Values.model). GPU, image, storage, security and
probes come from the root values so every server of the release is built the same way; an
instance archetype may pass its own "resources" and "gpuCount", and the server the "lora" settings
and "extraRepos" (LoRA adapters on the Hub) the download fetches with the model.
*/}}
{{- define "archon.server.deployment" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $m := .model -}}
{{- $amd := eq $v.gpu.vendor "amd" -}}
{{- $home := "/home/vllm" -}}
{{- $gpuName := include "archon.gpuResourceName" $root -}}
{{- $resources := deepCopy (.resources | default $v.resources | default dict) -}}
{{- $gpuCount := int (.gpuCount | default $v.gpu.count) -}}
{{- range $section := list "requests" "limits" -}}
{{- $part := deepCopy (get $resources $section | default dict) -}}
{{- $_ := set $part $gpuName $gpuCount -}}
{{- $_ := set $resources $section $part -}}
{{- end -}}
{{- $storage := include "archon.server.ephemeralStorage" $root -}}
{{- $resources = include "archon.withEphemeral" (dict "resources" $resources "storage" $storage) | fromYaml -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "archon.componentName" (dict "root" $root "component" .name) }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "archon.labels" (dict "root" $root "component" .name) | nindent 4 }}
  annotations:
    # ArgoCD sync wave: after the ServiceAccount and the configs (-1), before the gateway (1).
    argocd.argoproj.io/sync-wave: "0"
    {{- include "archon.scanner.gpuDeployment" $root | nindent 4 }}
spec:
  replicas: {{ $v.replicaCount }}
  revisionHistoryLimit: 3
  progressDeadlineSeconds: {{ $v.progressDeadlineSeconds }}
  strategy:
    {{- toYaml $v.strategy | nindent 4 }}
  selector:
    matchLabels:
      {{- include "archon.selectorLabels" (dict "root" $root "component" .name) | nindent 6 }}
  template:
    metadata:
      annotations:
        # A changed engine setting rolls the pod: vLLM reads its config file only at start.
        checksum/config: {{ include "archon.server.configFile" . | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- include "archon.labels" (dict "root" $root "component" .name) | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "archon.serviceAccountName" $root }}
      automountServiceAccountToken: false
      # Service links inject <SERVICE>_PORT variables; vLLM reads VLLM_PORT as its own setting,
      # so a Service named `vllm` in the namespace would break the server.
      enableServiceLinks: false
      {{- if and (not $amd) $v.gpu.nvidia.runtimeClassName }}
      runtimeClassName: {{ $v.gpu.nvidia.runtimeClassName }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        runAsUser: {{ $v.security.runAsUser }}
        runAsGroup: {{ $v.security.runAsGroup }}
        fsGroup: {{ $v.security.fsGroup }}
        fsGroupChangePolicy: OnRootMismatch
        seccompProfile:
          type: RuntimeDefault
        {{- if $amd }}
        # /dev/kfd and /dev/dri/renderD* keep the node's group owners (video, render).
        supplementalGroups:
          {{- toYaml $v.gpu.amd.supplementalGroups | nindent 10 }}
        {{- end }}
      {{- if $v.download.enabled }}
      initContainers:
        # Downloading apart from serving: a slow or failed download shows up as Init:Error with
        # its own logs instead of a server that never gets healthy.
        - name: download
          image: {{ include "archon.image" $root }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          command:
            - python3
            - -c
            - |
              import json, os
              from huggingface_hub import snapshot_download
              model = os.environ["ARCHON_MODEL"]
              revision = os.environ["ARCHON_REVISION"]
              patterns = json.loads(os.environ["ARCHON_ALLOW_PATTERNS"]) or None
              path = snapshot_download(repo_id=model, revision=revision, allow_patterns=patterns,
                                       max_workers=int(os.environ["ARCHON_MAX_WORKERS"]))
              print(f"archon: {model}@{revision} is in {path}", flush=True)
              for repo in json.loads(os.environ.get("ARCHON_EXTRA_REPOS") or "[]"):
                  path = snapshot_download(repo_id=repo, max_workers=int(os.environ["ARCHON_MAX_WORKERS"]))
                  print(f"archon: adapter {repo} is in {path}", flush=True)
          env:
            - name: ARCHON_MODEL
              value: {{ $m.name | quote }}
            - name: ARCHON_REVISION
              value: {{ $m.revision | quote }}
            - name: ARCHON_ALLOW_PATTERNS
              value: {{ $m.allowPatterns | default list | toJson | quote }}
            - name: ARCHON_MAX_WORKERS
              value: {{ $v.download.maxWorkers | quote }}
            {{- with .extraRepos }}
            - name: ARCHON_EXTRA_REPOS
              value: {{ toJson . | quote }}
            {{- end }}
            {{- include "archon.server.homeEnv" $home | nindent 12 }}
            - name: HF_HUB_DISABLE_TELEMETRY
              value: "1"
            {{- if $v.hfToken.existingSecret }}
            # A file, not a variable: huggingface_hub reads the token from HF_TOKEN_PATH.
            - name: HF_TOKEN_PATH
              value: /var/run/secrets/huggingface/token
            {{- end }}
          securityContext:
            {{- include "archon.containerSecurityContext" $root | nindent 12 }}
          resources:
            {{- include "archon.withEphemeral" (dict "resources" $v.download.resources "storage" $storage) | nindent 12 }}
          volumeMounts:
            {{- if $v.hfToken.existingSecret }}
            - name: hf-token
              mountPath: /var/run/secrets/huggingface
              readOnly: true
            {{- end }}
            - name: model-cache
              mountPath: /models
            - name: home
              mountPath: {{ $home }}
            - name: tmp
              mountPath: /tmp
      {{- end }}
      containers:
        - name: vllm
          image: {{ include "archon.image" $root }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          command:
            - vllm
            - serve
          args:
            - {{ $m.name | quote }}
            - --config
            - /etc/archon/vllm-config.yaml
            {{- range $m.extraArgs }}
            - {{ . | quote }}
            {{- end }}
          ports:
            - name: http
              containerPort: 8000
              protocol: TCP
          env:
            {{- include "archon.server.homeEnv" $home | nindent 12 }}
            # The init container downloaded the model: the server must not reach the Hub (a
            # restart without network still serves, and no revision drifts under a running pod).
            - name: HF_HUB_OFFLINE
              value: "1"
            # transformers writes trust-remote-code modules under HF_HOME/modules; /models is
            # read-only here, so they go to the scratch home.
            - name: HF_MODULES_CACHE
              value: {{ $home }}/.cache/huggingface/modules
            - name: VLLM_NO_USAGE_STATS
              value: "1"
            - name: DO_NOT_TRACK
              value: "1"
            {{- if $v.apiKey.enabled }}
            # vLLM takes --api-key from VLLM_API_KEY (vllm/envs.py); an env var keeps the key out
            # of the process arguments.
            - name: VLLM_API_KEY
              valueFrom:
                secretKeyRef:
                  name: {{ include "archon.apiKeySecret" $root }}
                  key: {{ $v.apiKey.key }}
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          securityContext:
            {{- include "archon.containerSecurityContext" $root | nindent 12 }}
          resources:
            {{- toYaml $resources | nindent 12 }}
          # Loading weights, memory profiling and CUDA graph capture take minutes; liveness and
          # readiness only start once the startup probe has passed, so they never kill a slow load.
          startupProbe:
            httpGet:
              path: /health
              port: http
            periodSeconds: {{ $v.probes.startup.periodSeconds }}
            failureThreshold: {{ $v.probes.startup.failureThreshold }}
            timeoutSeconds: {{ $v.probes.startup.timeoutSeconds }}
          livenessProbe:
            httpGet:
              path: /health
              port: http
            periodSeconds: {{ $v.probes.liveness.periodSeconds }}
            failureThreshold: {{ $v.probes.liveness.failureThreshold }}
            timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
          readinessProbe:
            httpGet:
              path: /health
              port: http
            periodSeconds: {{ $v.probes.readiness.periodSeconds }}
            failureThreshold: {{ $v.probes.readiness.failureThreshold }}
            timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
          volumeMounts:
            - name: config
              mountPath: /etc/archon
              readOnly: true
            # Written only by the download init container: the server runs offline
            # (HF_HUB_OFFLINE=1) and reads the weights and adapters.
            - name: model-cache
              mountPath: /models
              readOnly: true
            - name: shm
              mountPath: /dev/shm
            - name: home
              mountPath: {{ $home }}
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: config
          configMap:
            name: {{ include "archon.componentName" (dict "root" $root "component" (printf "%s-config" .name)) }}
        - name: model-cache
          {{- if $v.persistence.enabled }}
          persistentVolumeClaim:
            claimName: {{ include "archon.cacheClaimName" $root }}
          {{- else }}
          emptyDir: {}
          {{- end }}
        # PyTorch and NCCL exchange tensors through /dev/shm; the container default is 64Mi.
        - name: shm
          emptyDir:
            medium: Memory
            sizeLimit: {{ $v.shm.sizeLimit }}
        # The root filesystem is read-only: every cache vLLM, torch.compile, Triton and the Hub
        # client write lives under this home or /tmp.
        - name: home
          emptyDir:
            sizeLimit: {{ $v.scratch.homeSizeLimit }}
        - name: tmp
          emptyDir:
            sizeLimit: {{ $v.scratch.tmpSizeLimit }}
        {{- if and $v.download.enabled $v.hfToken.existingSecret }}
        - name: hf-token
          secret:
            secretName: {{ $v.hfToken.existingSecret }}
            # fsGroup owns it; readable by the group only.
            defaultMode: 0440
            items:
              - key: {{ $v.hfToken.key }}
                path: token
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/*
Environment that points every cache at the writable home and the Hub cache at the model volume.
USER is set because torch.compile and Triton name cache folders after getpass.getuser(), which
fails for a uid without a passwd entry in the image unless USER is set.
*/}}
{{- define "archon.server.homeEnv" -}}
- name: HOME
  value: {{ . }}
- name: USER
  value: vllm
- name: HF_HOME
  value: /models
- name: XDG_CACHE_HOME
  value: {{ . }}/.cache
- name: XDG_CONFIG_HOME
  value: {{ . }}/.config
- name: VLLM_CACHE_ROOT
  value: {{ . }}/.cache/vllm
- name: VLLM_CONFIG_ROOT
  value: {{ . }}/.config/vllm
- name: TRITON_CACHE_DIR
  value: {{ . }}/.triton/cache
- name: TORCHINDUCTOR_CACHE_DIR
  value: {{ . }}/.cache/torchinductor
- name: NUMBA_CACHE_DIR
  value: {{ . }}/.cache/numba
{{- end -}}

{{- define "archon.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.security.runAsUser }}
runAsGroup: {{ .Values.security.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}
