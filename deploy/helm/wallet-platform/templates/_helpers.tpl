{{/*
The six programs: port, environment prefix, database (and its role), whether it uses the
broker, whether it serves HTTP (probed over HTTP) and is public (anyone may connect: the
entry points), and which programs may call it (for the NetworkPolicies).
*/}}
{{- define "wp.programs" -}}
gateway:
  port: 8080
  addrVariable: GATEWAY_ADDR
  http: true
  public: true
  callers: []
web:
  port: 3000
  addrVariable: WEB_ADDR
  http: true
  public: true
  callers: []
auth-service:
  port: 50051
  prefix: AUTH
  database: auth
  callers: [gateway, statement-service]
wallet-service:
  port: 50052
  prefix: WALLET
  database: wallet
  broker: true
  callers: [gateway]
statement-service:
  port: 50053
  prefix: STATEMENT
  database: statement
  broker: true
  callers: [gateway]
order-service:
  port: 50054
  prefix: ORDER
  database: orders
  broker: true
  callers: [gateway]
{{- end }}

{{- define "wp.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "wp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one program: (dict "root" $ "program" "gateway"). */}}
{{- define "wp.selectorLabels" -}}
app.kubernetes.io/name: {{ .program }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{/* The Secret of the internal credential and the signing-key encryption key. */}}
{{- define "wp.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "wp.fullname" .)) }}
{{- end }}

{{- define "wp.postgresCluster" -}}
{{- printf "%s-postgres" (include "wp.fullname" .) }}
{{- end }}

{{- define "wp.rabbitmqCluster" -}}
{{- printf "%s-rabbitmq" (include "wp.fullname" .) }}
{{- end }}

{{/*
A random value generated at the first install and kept on upgrade: the value already in the
Secret `name` under `key`, or a new one. (`lookup` answers nothing under `helm template`, so
offline renders show a fresh value.) Call with (dict "root" $ "name" "..." "key" "..."),
adding "bytes" true for 32 random bytes in base64 rather than 48 letters and digits.
*/}}
{{- define "wp.keptRandom" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name }}
{{- if and $existing (hasKey ($existing.data | default dict) .key) }}
{{- index $existing.data .key | b64dec }}
{{- else if .bytes }}
{{- randBytes 32 }}
{{- else }}
{{- randAlphaNum 48 }}
{{- end }}
{{- end }}

{{/* The container security context every program and hook runs with. */}}
{{- define "wp.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}
