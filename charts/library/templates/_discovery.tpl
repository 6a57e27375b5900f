{{/*
library.discovery.mlflow: env entries (a YAML list, place under `env:` with nindent) from the
first Secret in the release namespace annotated `onyxia/discovery: mlflow` (API list order, i.e.
by name). Data keys read (base64-decoded): MLFLOW_TRACKING_URI (or Onyxia's `uri`),
MLFLOW_S3_ENDPOINT_URL (if present). Only when discovery.mlflow is true. Uses `lookup`, so it
renders nothing offline (helm template / client dry-run): install against the cluster.
*/}}
{{- define "library.discovery.mlflow" -}}
{{- if dig "discovery" "mlflow" false .Values.AsMap -}}
{{- $found := dict -}}
{{- $secrets := lookup "v1" "Secret" .Release.Namespace "" | default dict -}}
{{- range $s := (dig "items" list $secrets) -}}
{{- if and (not $found) (eq (dig "metadata" "annotations" "onyxia/discovery" "" $s) "mlflow") -}}
{{- $found = dig "data" dict $s -}}
{{- end -}}
{{- end -}}
{{- $uri := coalesce (get $found "MLFLOW_TRACKING_URI") (get $found "uri") "" -}}
{{- if $uri }}
- name: MLFLOW_TRACKING_URI
  value: {{ b64dec $uri | quote }}
{{- with (get $found "MLFLOW_S3_ENDPOINT_URL") }}
- name: MLFLOW_S3_ENDPOINT_URL
  value: {{ b64dec . | quote }}
{{- end }}
{{- end -}}
{{- end -}}
{{- end -}}
