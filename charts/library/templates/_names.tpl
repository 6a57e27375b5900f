{{/*
Names and labels. Every helper takes the chart's root context (`.`).
*/}}

{{/* library.name: the chart name (or nameOverride), a DNS label. */}}
{{- define "library.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* library.fullname: the release name (or fullnameOverride), truncated to 63 characters. */}}
{{- define "library.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* library.chart: "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "library.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* library.selectorLabels: the immutable labels pods are selected by. */}}
{{- define "library.selectorLabels" -}}
app.kubernetes.io/name: {{ include "library.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* library.labels: the standard labels of every object. */}}
{{- define "library.labels" -}}
helm.sh/chart: {{ include "library.chart" . }}
{{ include "library.selectorLabels" . }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* library.replicas: 0 when global.suspend is true (Onyxia suspend/resume), else 1. */}}
{{- define "library.replicas" -}}
{{- if dig "global" "suspend" false .Values.AsMap -}}0{{- else -}}1{{- end -}}
{{- end -}}
