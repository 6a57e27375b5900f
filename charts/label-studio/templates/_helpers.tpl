{{/* labelstudio.username: the admin login, an e-mail (Label Studio logs in by e-mail). */}}
{{- define "labelstudio.username" -}}
{{- $sec := .Values.security | default dict -}}
{{- if $sec.username -}}
{{ $sec.username }}
{{- else -}}
{{ $sec.userIdep | default "admin" }}@onyxia.local
{{- end -}}
{{- end -}}

{{/* labelstudio.s3EndpointUrl: https://<AWS_S3_ENDPOINT> (kept as-is when it has a scheme). */}}
{{- define "labelstudio.s3EndpointUrl" -}}
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
