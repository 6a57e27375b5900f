{{/*
Security contexts (Pod Security Standard "restricted"). Both helpers render the BODY of a
securityContext mapping, to be placed with nindent:

  securityContext:
    {{- include "library.podSecurityContext" . | nindent 8 }}

Ids come from .Values.securityContext.{runAsUser,runAsGroup,fsGroup} (default 1000/100/100,
the `onyxia` user and `users` group of the InseeFrLab images). Nothing here can be switched to
privileged from values.
*/}}

{{- define "library.podSecurityContext" -}}
{{- $sc := dig "securityContext" dict .Values.AsMap -}}
runAsNonRoot: true
runAsUser: {{ dig "runAsUser" 1000 $sc | int64 }}
runAsGroup: {{ dig "runAsGroup" 100 $sc | int64 }}
fsGroup: {{ dig "fsGroup" 100 $sc | int64 }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "library.containerSecurityContext" -}}
{{- $sc := dig "securityContext" dict .Values.AsMap -}}
runAsNonRoot: true
runAsUser: {{ dig "runAsUser" 1000 $sc | int64 }}
runAsGroup: {{ dig "runAsGroup" 100 $sc | int64 }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}
