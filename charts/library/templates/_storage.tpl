{{/* library.pvc.name: persistence.existingClaim, else "<fullname>-home". */}}
{{- define "library.pvc.name" -}}
{{- $existing := dig "persistence" "existingClaim" "" .Values.AsMap -}}
{{- if $existing -}}{{ $existing }}{{- else -}}{{ printf "%s-home" (include "library.fullname" . | trunc 58 | trimSuffix "-") }}{{- end -}}
{{- end -}}

{{/*
library.pvc: a PersistentVolumeClaim when persistence.enabled (and no persistence.existingClaim).
Values: persistence.size (default 10Gi), persistence.storageClass ("" = cluster default,
"-" = no class), persistence.accessMode (default ReadWriteOnce).
*/}}
{{- define "library.pvc" -}}
{{- $p := dig "persistence" dict .Values.AsMap -}}
{{- if and $p.enabled (not $p.existingClaim) -}}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ include "library.pvc.name" . }}
  labels:
    {{- include "library.labels" . | nindent 4 }}
spec:
  accessModes:
    - {{ $p.accessMode | default "ReadWriteOnce" }}
  {{- if $p.storageClass }}
  storageClassName: {{ if eq $p.storageClass "-" }}""{{ else }}{{ $p.storageClass | quote }}{{ end }}
  {{- end }}
  resources:
    requests:
      storage: {{ $p.size | default "10Gi" | quote }}
{{- end -}}
{{- end -}}
