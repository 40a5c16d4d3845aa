{{- define "cart-recovery.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cart-recovery.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "cart-recovery.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The roles to deploy: "all", or consumer + scheduler + api when split. */}}
{{- define "cart-recovery.roles" -}}
{{- if .Values.roles.split -}}consumer scheduler api{{- else -}}all{{- end -}}
{{- end -}}

{{/* The role whose pods serve the Service: "api" when split, else "all". */}}
{{- define "cart-recovery.webRole" -}}
{{- if .Values.roles.split -}}api{{- else -}}all{{- end -}}
{{- end -}}

{{- define "cart-recovery.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "cart-recovery.fullname" .) -}}
{{- end -}}

{{- define "cart-recovery.configMapName" -}}
{{- .Values.config.existingConfigMap | default (printf "%s-config" (include "cart-recovery.fullname" .)) -}}
{{- end -}}

{{- define "cart-recovery.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Secret values reach the process as RECOVERY_* variables read from the Secret, never inlined. */}}
{{- define "cart-recovery.secretEnv" -}}
{{- $secret := include "cart-recovery.secretName" . -}}
{{- $keys := .Values.secrets.keys -}}
- name: RECOVERY_DATABASE__URL
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ $keys.databaseUrl }}}}
{{- if not .migrationOnly }}
- name: RECOVERY_SECURITY__LINK_SECRET
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ $keys.linkSecret }}}}
{{- range $env, $key := dict "RECOVERY_SECURITY__PREVIOUS_LINK_SECRET" $keys.previousLinkSecret "RECOVERY_SECURITY__API_TOKENS" $keys.apiTokens "RECOVERY_CHANNELS__SMS__ACCOUNT_SID" $keys.twilioAccountSid "RECOVERY_CHANNELS__SMS__AUTH_TOKEN" $keys.twilioAuthToken "RECOVERY_CHANNELS__EMAIL__USERNAME" $keys.smtpUsername "RECOVERY_CHANNELS__EMAIL__PASSWORD" $keys.smtpPassword "RECOVERY_CALLBACKS__WEBHOOK_SECRET" $keys.callbacksWebhookSecret "RECOVERY_KAFKA__SECURITY__USERNAME" $keys.kafkaUsername "RECOVERY_KAFKA__SECURITY__PASSWORD" $keys.kafkaPassword "RECOVERY_INGEST__SHOPIFY__SECRET" $keys.shopifyWebhookSecret "RECOVERY_INGEST__STRIPE__SECRET" $keys.stripeWebhookSecret "RECOVERY_INGEST__WOOCOMMERCE__SECRET" $keys.woocommerceWebhookSecret "RECOVERY_OFFERS__REGISTER_SECRET" $keys.offersRegisterSecret }}
- name: {{ $env }}
  valueFrom: {secretKeyRef: {name: {{ $secret }}, key: {{ $key }}, optional: true}}
{{- end }}
{{- end }}
{{- end -}}

{{/* A hook Job runs before the release creates its ServiceAccount: it uses an existing one, or "default". */}}
{{- define "cart-recovery.serviceAccountName" -}}
{{- if and .Values.serviceAccount.create .hook -}}
default
{{- else if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "cart-recovery.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Kafka: partitions and replication (one source of truth with the chart), protocol and TLS files. */}}
{{- define "cart-recovery.kafkaEnv" -}}
{{- $kafka := .Values.kafka -}}
- name: RECOVERY_KAFKA__PARTITIONS
  value: {{ $kafka.partitions | quote }}
- name: RECOVERY_KAFKA__REPLICATION_FACTOR
  value: {{ $kafka.replicationFactor | quote }}
- name: RECOVERY_KAFKA__SECURITY__PROTOCOL
  value: {{ $kafka.security.protocol | quote }}
- name: RECOVERY_KAFKA__SECURITY__SASL_MECHANISM
  value: {{ $kafka.security.saslMechanism | quote }}
{{- with $kafka.security.tls }}
{{- if .existingSecret }}
{{- if .caKey }}
- name: RECOVERY_KAFKA__SECURITY__CA_FILE
  value: /etc/recovery/kafka-tls/{{ .caKey }}
{{- end }}
{{- if .certKey }}
- name: RECOVERY_KAFKA__SECURITY__CERT_FILE
  value: /etc/recovery/kafka-tls/{{ .certKey }}
{{- end }}
{{- if .keyKey }}
- name: RECOVERY_KAFKA__SECURITY__KEY_FILE
  value: /etc/recovery/kafka-tls/{{ .keyKey }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "cart-recovery.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
serviceAccountName: {{ include "cart-recovery.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Whether flows.yaml comes from a ConfigMap (inline config.flows, or the operator's ConfigMap); else the image's. */}}
{{- define "cart-recovery.flowsFromConfigMap" -}}
{{- if or (and (not .Values.config.existingConfigMap) .Values.config.flows) (and .Values.config.existingConfigMap .Values.config.existingConfigMapHasFlows) -}}true{{- end -}}
{{- end -}}

{{/* Consumer processes per pod (`recovery run --role consumer --workers N`): roles.consumer.workers, else
two per CPU of the container's limit (rounded up; each waits for the database part of the time), else 2: without
a limit the app would count the node's CPUs. Never more than the pod's share of kafka.partitions (partitions /
replicas, at least 1): every worker is a group member with its own database pool, and a member without a
partition sits idle holding its connections. And no more than the memory limit holds: the supervisor takes
about 150 MiB and each worker up to about 224 MiB (a batch in flight and the next one decoding, measured in
bench.ingest): four workers would need ~930 MB, over the default 768Mi. Called with (dict "settings" <the role's
settings> "partitions" <kafka.partitions> "replicas" <the consumer replicas: replicaCount, or KEDA's minimum>). */}}
{{- define "cart-recovery.consumerWorkers" -}}
{{- $workers := int (.settings.workers | default 0) -}}
{{- $resources := .settings.resources | default dict -}}
{{- $cpu := toString (dig "limits" "cpu" "" $resources) -}}
{{- $memory := toString (dig "limits" "memory" "" $resources) -}}
{{- $share := max 1 (div (int .partitions) (max 1 (int .replicas))) -}}
{{- $perCpu := 2 -}}
{{- if hasSuffix "m" $cpu -}}
{{- $perCpu = mul 2 (div (add (atoi (trimSuffix "m" $cpu)) 999) 1000) -}}
{{- else if ne $cpu "" -}}
{{- $perCpu = mul 2 (int (ceil (float64 $cpu))) -}}
{{- end -}}
{{- $byMemory := $perCpu -}}
{{- if ne $memory "" -}}
{{- $byMemory = max 1 (div (sub (int (include "cart-recovery.mebibytes" $memory)) 150) 224) -}}
{{- end -}}
{{- if gt $workers 0 -}}
{{ $workers }}
{{- else -}}
{{ max 1 (min $perCpu $share $byMemory) }}
{{- end -}}
{{- end -}}

{{/* A Kubernetes memory quantity ("768Mi", "1Gi", "1G", "512000Ki", bytes) in whole MiB. */}}
{{- define "cart-recovery.mebibytes" -}}
{{- $number := regexFind "^[0-9.]+" . -}}
{{- $unit := trimPrefix $number . -}}
{{- $perUnit := dict "" 0.00000095367431640625 "Ki" 0.0009765625 "Mi" 1.0 "Gi" 1024.0 "Ti" 1048576.0 "k" 0.00095367431640625 "M" 0.95367431640625 "G" 953.67431640625 "T" 953674.31640625 -}}
{{- if not (hasKey $perUnit $unit) -}}
{{- fail (printf "memory limit %q: expected a Kubernetes quantity such as 768Mi or 1Gi" .) -}}
{{- end -}}
{{- int (floor (mulf (float64 $number) (index $perUnit $unit))) -}}
{{- end -}}

{{/* The consumer replicas the worker count is sized for: KEDA's minimum when KEDA scales them, else replicaCount. */}}
{{- define "cart-recovery.consumerReplicas" -}}
{{- if and .Values.roles.split .Values.keda.enabled -}}
{{ int .Values.keda.minReplicaCount }}
{{- else -}}
{{ int .Values.roles.consumer.replicaCount }}
{{- end -}}
{{- end -}}

{{/* The consumer Deployment's `--workers` (see consumerWorkers). */}}
{{- define "cart-recovery.consumerWorkerCount" -}}
{{ include "cart-recovery.consumerWorkers" (dict "settings" .Values.roles.consumer "partitions" .Values.kafka.partitions "replicas" (include "cart-recovery.consumerReplicas" .)) }}
{{- end -}}
