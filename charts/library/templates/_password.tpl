{{/* library.password.secretName: "<fullname>-password". */}}
{{- define "library.password.secretName" -}}
{{- printf "%s-password" (include "library.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{/*
library.password.secret: a Secret with key PASSWORD = security.password. When that value is
empty, the PASSWORD of the existing Secret is kept (upgrade), else a random 24-character one is
generated (read it back with kubectl; see the chart NOTES).
*/}}
{{- define "library.password.secret" -}}
{{- $name := include "library.password.secretName" . -}}
{{- $password := dig "security" "password" "" .Values.AsMap | toString -}}
{{- if not $password -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $name | default dict -}}
{{- with (dig "data" "PASSWORD" "" $existing) }}{{ $password = b64dec . }}{{ end -}}
{{- end -}}
{{- if not $password }}{{ $password = randAlphaNum 24 }}{{ end -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ $name }}
  labels:
    {{- include "library.labels" . | nindent 4 }}
type: Opaque
stringData:
  PASSWORD: {{ $password | quote }}
{{- end -}}

{{/* library.password.env: env entry PASSWORD from the password Secret. Param: root context. */}}
{{- define "library.password.env" -}}
- name: PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "library.password.secretName" . }}
      key: PASSWORD
{{- end -}}
