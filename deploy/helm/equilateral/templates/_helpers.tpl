{{/* The chart's name, at most 63 characters. */}}
{{- define "equilateral.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the prefix of every object. */}}
{{- define "equilateral.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; dict: root, component. */}}
{{- define "equilateral.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "equilateral.selectorLabels" . }}
{{- end -}}

{{/* Labels a Deployment selects its pods by; dict: root, component, [agent]. */}}
{{- define "equilateral.selectorLabels" -}}
app.kubernetes.io/name: {{ include "equilateral.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- if .agent }}
equilateral.io/agent: {{ .agent }}
{{- end }}
{{- end -}}

{{- define "equilateral.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "equilateral.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "equilateral.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* --server: the NATS URLs, comma-separated. */}}
{{- define "equilateral.servers" -}}
{{- if not .Values.servers -}}
{{- fail "servers: at least one NATS URL is needed" -}}
{{- end -}}
{{- join "," .Values.servers -}}
{{- end -}}

{{/* A name as equilateral spells them: one subject token. */}}
{{- define "equilateral.checkName" -}}
{{- if not (regexMatch "^[a-z0-9][a-z0-9_-]{0,63}$" (toString .name)) -}}
{{- fail (printf "%s: %q is not a name ([a-z0-9][a-z0-9_-]{0,63})" .what (toString .name)) -}}
{{- end -}}
{{- end -}}

{{/* The environment every container gets: OTEL, the CA, values' env. */}}
{{- define "equilateral.env" -}}
{{- with .Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.otel.protocol }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.otel.sampler }}
- name: OTEL_TRACES_SAMPLER
  value: {{ . | quote }}
{{- end }}
{{- with .Values.otel.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
{{- if .Values.tls.caSecret }}
- name: NATS_CA
  value: {{ printf "/etc/equilateral/tls/%s" .Values.tls.caKey | quote }}
- name: SSL_CERT_FILE
  value: {{ printf "/etc/equilateral/tls/%s" .Values.tls.caKey | quote }}
{{- end }}
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The CA volume, if any. */}}
{{- define "equilateral.tlsVolume" -}}
{{- if .Values.tls.caSecret }}
- name: tls-ca
  secret:
    secretName: {{ .Values.tls.caSecret }}
    defaultMode: 0444
    items:
      - key: {{ .Values.tls.caKey }}
        path: {{ .Values.tls.caKey }}
{{- end }}
{{- end -}}

{{- define "equilateral.tlsVolumeMount" -}}
{{- if .Values.tls.caSecret }}
- name: tls-ca
  mountPath: /etc/equilateral/tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* The policy ConfigMap's name, or nothing without a policy. */}}
{{- define "equilateral.policyConfigMap" -}}
{{- if .Values.policy.existingConfigMap -}}
{{- .Values.policy.existingConfigMap -}}
{{- else if .Values.policy.content -}}
{{- printf "%s-policy" (include "equilateral.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* A list of command-line arguments, each a string whatever YAML made of it. */}}
{{- define "equilateral.argList" -}}
{{- range . }}
- {{ toString . | quote }}
{{- end }}
{{- end -}}
