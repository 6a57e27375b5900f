{{/*
library.discovery.mlflow: env entries (a YAML list, place under `env:` with nindent) from the
first Secret in the release namespace annotated `onyxia/discovery: mlflow` (API list order, i.e.
by name). Data keys read (base64-decoded): MLFLOW_TRACKING_URI (or Onyxia's `uri`),
MLFLOW_S3_ENDPOINT_URL (if present). Only when discovery.mlflow is true. Uses `lookup`, so it
renders nothing offline (helm template / client dry-run): install against the cluster.
Param: the root context.
*/}}
{{- define "library.discovery.mlflow" -}}
{{- if dig "discovery" "mlflow" false .Values.AsMap -}}
{{- $secrets := lookup "v1" "Secret" .Release.Namespace "" | default dict -}}
{{- include "library.discovery.mlflow.fromSecrets" (dig "items" list $secrets) -}}
{{- end -}}
{{- end -}}

{{/*
library.discovery.mlflow.fromSecrets: the same env entries from a list of Secret objects (as
`lookup` returns them). Separate so that it can be tested without a cluster.
*/}}
{{- define "library.discovery.mlflow.fromSecrets" -}}
{{- $found := dict -}}
{{- range $s := . -}}
{{- if and (not $found) (eq (dig "metadata" "annotations" "onyxia/discovery" "" $s) "mlflow") -}}
{{- $found = dig "data" dict $s -}}
{{- end -}}
{{- end -}}
{{- $uri := coalesce (get $found "MLFLOW_TRACKING_URI") (get $found "uri") "" | default "" -}}
{{- if $uri }}
- name: MLFLOW_TRACKING_URI
  value: {{ b64dec $uri | quote }}
{{- with (get $found "MLFLOW_S3_ENDPOINT_URL") }}
- name: MLFLOW_S3_ENDPOINT_URL
  value: {{ b64dec . | quote }}
{{- end }}
{{- end -}}
{{- end -}}
