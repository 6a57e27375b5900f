{{/* The chart name. */}}
{{- define "onyxia-py.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of the namespaced objects. */}}
{{- define "onyxia-py.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The name of the cluster-scoped objects: the namespace is part of it, so two releases of the
same name in two namespaces do not fight over one ClusterRole. */}}
{{- define "onyxia-py.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "onyxia-py.fullname" .) | trunc 253 | trimSuffix "-" }}
{{- end }}

{{- define "onyxia-py.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "onyxia-py.selectorLabels" -}}
app.kubernetes.io/name: {{ include "onyxia-py.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "onyxia-py.labels" -}}
helm.sh/chart: {{ include "onyxia-py.chart" . }}
{{ include "onyxia-py.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: onyxia-py
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "onyxia-py.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "onyxia-py.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "onyxia-py.secretName" -}}
{{- default (include "onyxia-py.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "onyxia-py.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when the database is SQLite (a file in one pod), empty for PostgreSQL. */}}
{{- define "onyxia-py.sqlite" -}}
{{- if .Values.database.url }}
{{- if hasPrefix "sqlite" .Values.database.url }}true{{ end }}
{{- else if not .Values.database.urlInExistingSecret }}true
{{- end }}
{{- end }}

{{/* The URL users reach the platform at. */}}
{{- define "onyxia-py.publicUrl" -}}
{{- $configured := dig "server" "public_url" "" (.Values.config | default dict) }}
{{- if $configured }}
{{- $configured }}
{{- else if and .Values.ingress.enabled .Values.ingress.host }}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) .Values.ingress.host }}
{{- end }}
{{- end }}

{{/* The Lease the replicas elect their leader with (the Role grants this one only). */}}
{{- define "onyxia-py.leaseName" -}}
{{- dig "leader_election" "lease_name" "" (.Values.config | default dict) | default (include "onyxia-py.fullname" .) }}
{{- end }}

{{/* The settings file: the operator's `config` plus what the chart decides. */}}
{{- define "onyxia-py.configFile" -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- $server := get $config "server" | default dict }}
{{- $publicUrl := include "onyxia-py.publicUrl" . }}
{{- if $publicUrl }}
{{- $_ := set $server "public_url" $publicUrl }}
{{- else }}
{{- $_ := unset $server "public_url" }}
{{- end }}
{{- $_ := set $config "server" $server }}
{{- $election := get $config "leader_election" | default dict }}
{{- $_ := set $election "lease_name" (include "onyxia-py.leaseName" .) }}
{{- $_ := set $election "lease_namespace" .Release.Namespace }}
{{- $_ := set $config "leader_election" $election }}
{{- toYaml $config }}
{{- end }}

{{/* Refuse values that cannot work, each with the reason and the fix. */}}
{{- define "onyxia-py.validate" -}}
{{- $replicas := int .Values.replicaCount }}
{{- if and (gt $replicas 1) (include "onyxia-py.sqlite" .) }}
{{- fail (printf "replicaCount is %d but the database is SQLite: an SQLite file lives in one pod, so it supports a single replica only. Set database.url to a PostgreSQL URL (postgresql+asyncpg://user:password@host:5432/db), or database.urlInExistingSecret=true with the URL in secrets.existingSecret, or set replicaCount to 1." $replicas) }}
{{- end }}
{{- with .Values.database.url }}
{{- if not (or (hasPrefix "sqlite+aiosqlite://" .) (hasPrefix "postgresql+asyncpg://" .)) }}
{{- fail "database.url must start with postgresql+asyncpg:// (or sqlite+aiosqlite:// for a single replica)" }}
{{- end }}
{{- end }}
{{- if and .Values.database.urlInExistingSecret (not .Values.secrets.existingSecret) }}
{{- fail "database.urlInExistingSecret is true but secrets.existingSecret is empty: name the Secret holding the database URL" }}
{{- end }}
{{- if and .Values.database.urlInExistingSecret .Values.database.url }}
{{- fail "give the database URL either in database.url or in secrets.existingSecret (database.urlInExistingSecret), not both" }}
{{- end }}
{{- if and .Values.secrets.existingSecret .Values.database.url }}
{{- fail "secrets.existingSecret is set: put the database URL in that Secret (database.urlInExistingSecret=true), not in database.url" }}
{{- end }}
{{- $config := .Values.config | default dict }}
{{- range $path := list "server.session_secret" "database.url" "auth.client_secret" "auth.token_encryption_keys" }}
{{- $parts := splitList "." $path }}
{{- $group := get $config (first $parts) | default dict }}
{{- if hasKey $group (last $parts) }}
{{- fail (printf "config.%s is a secret: do not put it in `config` (a ConfigMap); use %s" $path (get (dict "server.session_secret" "secrets.sessionSecret" "database.url" "database.url" "auth.client_secret" "secrets.oidcClientSecret" "auth.token_encryption_keys" "secrets.tokenEncryptionKeys") $path)) }}
{{- end }}
{{- end }}
{{- with .Values.secrets.sessionSecret }}
{{- if lt (len .) 32 }}
{{- fail "secrets.sessionSecret must have at least 32 characters" }}
{{- end }}
{{- end }}
{{- end }}
