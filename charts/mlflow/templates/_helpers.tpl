{{/*
mlflow.s3EndpointUrl: the S3 endpoint as a URL for MLFLOW_S3_ENDPOINT_URL: https://<AWS_S3_ENDPOINT>,
or the value as-is when it already has a scheme (a plain-HTTP MinIO in a test cluster). Empty when
S3 is off (library.s3.enabled: s3.enabled and an access key) or no endpoint is set (then boto3
uses AWS).
*/}}
{{- define "mlflow.s3EndpointUrl" -}}
{{- $s3 := .Values.s3 | default dict -}}
{{- $endpoint := coalesce $s3.AWS_S3_ENDPOINT $s3.endpoint | default "" | toString | trimSuffix "/" -}}
{{- if and (include "library.s3.enabled" .) $endpoint -}}
{{- if or (hasPrefix "https://" $endpoint) (hasPrefix "http://" $endpoint) -}}
{{ $endpoint }}
{{- else -}}
https://{{ $endpoint }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
mlflow.artifactsUri: service.directory when set; else s3://<bucket>/<artifacts.prefix> when S3 is on
(with credentials) and a bucket is known; else a directory on the data volume.
*/}}
{{- define "mlflow.artifactsUri" -}}
{{- $s3 := .Values.s3 | default dict -}}
{{- $bucket := coalesce $s3.AWS_BUCKET_NAME $s3.bucketName | default "" | toString | trimPrefix "s3://" | trimSuffix "/" -}}
{{- $prefix := dig "artifacts" "prefix" "mlflow-artifacts" .Values.AsMap | toString | trimAll "/" -}}
{{- if .Values.service.directory -}}
{{ .Values.service.directory }}
{{- else if and (include "library.s3.enabled" .) $bucket -}}
s3://{{ $bucket }}{{ if $prefix }}/{{ $prefix }}{{ end }}
{{- else -}}
/mlflow/artifacts
{{- end -}}
{{- end -}}

{{/*
mlflow.proxyArtifacts: "true" when the server proxies artifacts (--artifacts-destination). Forced
for a local directory: clients cannot write to the server's volume themselves.
*/}}
{{- define "mlflow.proxyArtifacts" -}}
{{- $uri := include "mlflow.artifactsUri" . -}}
{{- if or (dig "service" "proxyArtifact" "enabled" true .Values.AsMap) (hasPrefix "/" $uri) -}}true{{- end -}}
{{- end -}}

{{/* mlflow.port: the port the server listens on and the Service exposes. */}}
{{- define "mlflow.port" -}}
{{- dig "networking" "service" "port" 5000 .Values.AsMap | int -}}
{{- end -}}

{{/* mlflow.trackingUri: the in-cluster URL of the tracking server. */}}
{{- define "mlflow.trackingUri" -}}
http://{{ include "library.fullname" . }}.{{ .Release.Namespace }}.svc:{{ include "mlflow.port" . }}
{{- end -}}

{{/* mlflow.databaseSecretName: the Secret holding MLFLOW_BACKEND_STORE_URI (database.url). */}}
{{- define "mlflow.databaseSecretName" -}}
{{- printf "%s-database" (include "library.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{/* mlflow.discoverySecretName: the Secret other charts of the project discover. */}}
{{- define "mlflow.discoverySecretName" -}}
{{- printf "%s-discovery" (include "library.fullname" . | trunc 53 | trimSuffix "-") -}}
{{- end -}}
