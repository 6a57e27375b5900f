{{/*
S3 credentials. Values (our names first; Onyxia's library-chart names are accepted too, so a
values file written for Onyxia charts keeps working):

  s3.enabled
  s3.secretName                                  (optional: name of the Secret)
  s3.existingSecret                              (optional: a Secret the platform created and
                                                  keeps fresh; the chart then renders none)
  s3.AWS_ACCESS_KEY_ID      | s3.accessKeyId
  s3.AWS_SECRET_ACCESS_KEY  | s3.secretAccessKey
  s3.AWS_SESSION_TOKEN      | s3.sessionToken
  s3.AWS_DEFAULT_REGION     | s3.defaultRegion    (default us-east-1)
  s3.AWS_S3_ENDPOINT        | s3.endpoint         (host[:port], no scheme)
  s3.AWS_BUCKET_NAME        | s3.bucketName       (optional)

The Secret also holds `credentials`, an AWS shared-credentials file, `credentials.json` (the
credentials as a `credential_process` prints them) and `config`, an AWS config file whose
profile `onyxia` reads that JSON. They are mounted as a volume (not with subPath), so when the
platform refreshes the Secret the kubelet updates the files in place: processes that re-read the
credentials file, or use profile `onyxia` (SDKs refresh such credentials before they expire),
keep working without a restart. Environment variables keep the values the pod started with.
*/}}

{{/* library.s3.values (internal): the normalised S3 settings as a dict, via fromYaml. */}}
{{- define "library.s3.values" -}}
{{- $s3 := dig "s3" dict .Values.AsMap -}}
AWS_ACCESS_KEY_ID: {{ (coalesce $s3.AWS_ACCESS_KEY_ID $s3.accessKeyId "" | default "") | toString | quote }}
AWS_SECRET_ACCESS_KEY: {{ (coalesce $s3.AWS_SECRET_ACCESS_KEY $s3.secretAccessKey "" | default "") | toString | quote }}
AWS_SESSION_TOKEN: {{ (coalesce $s3.AWS_SESSION_TOKEN $s3.sessionToken "" | default "") | toString | quote }}
AWS_DEFAULT_REGION: {{ (coalesce $s3.AWS_DEFAULT_REGION $s3.defaultRegion "us-east-1" | default "us-east-1") | toString | quote }}
AWS_S3_ENDPOINT: {{ (coalesce $s3.AWS_S3_ENDPOINT $s3.endpoint "" | default "") | toString | trimPrefix "https://" | trimPrefix "http://" | trimSuffix "/" | quote }}
AWS_BUCKET_NAME: {{ (coalesce $s3.AWS_BUCKET_NAME $s3.bucketName "" | default "") | toString | quote }}
{{- end -}}

{{/*
library.s3.enabled: "true" when s3.enabled is true AND an access key (or an existing Secret) is
set, else "". (So a launch without an S3 profile renders no empty credentials that would break
anonymous access.)
*/}}
{{- define "library.s3.enabled" -}}
{{- $v := include "library.s3.values" . | fromYaml -}}
{{- $existing := dig "s3" "existingSecret" "" .Values.AsMap -}}
{{- if and (dig "s3" "enabled" false .Values.AsMap) (or $v.AWS_ACCESS_KEY_ID $existing) -}}true{{- end -}}
{{- end -}}

{{/* library.s3.secretName: s3.existingSecret, else s3.secretName, else "<fullname>-s3". */}}
{{- define "library.s3.secretName" -}}
{{- $name := coalesce (dig "s3" "existingSecret" "" .Values.AsMap) (dig "s3" "secretName" "" .Values.AsMap) -}}
{{- if $name -}}{{ $name }}{{- else -}}{{ printf "%s-s3" (include "library.fullname" . | trunc 60 | trimSuffix "-") }}{{- end -}}
{{- end -}}

{{/* library.s3.secret: the Secret (a whole manifest), only when s3.enabled and no
s3.existingSecret is given. */}}
{{- define "library.s3.secret" -}}
{{- if and (include "library.s3.enabled" .) (not (dig "s3" "existingSecret" "" .Values.AsMap)) -}}
{{- $v := include "library.s3.values" . | fromYaml -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "library.s3.secretName" . }}
  labels:
    {{- include "library.labels" . | nindent 4 }}
type: Opaque
stringData:
  AWS_ACCESS_KEY_ID: {{ $v.AWS_ACCESS_KEY_ID | quote }}
  AWS_SECRET_ACCESS_KEY: {{ $v.AWS_SECRET_ACCESS_KEY | quote }}
  AWS_SESSION_TOKEN: {{ $v.AWS_SESSION_TOKEN | quote }}
  AWS_DEFAULT_REGION: {{ $v.AWS_DEFAULT_REGION | quote }}
  AWS_S3_ENDPOINT: {{ $v.AWS_S3_ENDPOINT | quote }}
  {{- if $v.AWS_S3_ENDPOINT }}
  AWS_ENDPOINT_URL: {{ printf "https://%s" $v.AWS_S3_ENDPOINT | quote }}
  S3_ENDPOINT: {{ printf "https://%s/" $v.AWS_S3_ENDPOINT | quote }}
  {{- end }}
  {{- if $v.AWS_BUCKET_NAME }}
  AWS_BUCKET_NAME: {{ $v.AWS_BUCKET_NAME | quote }}
  {{- end }}
  credentials: |
    [default]
    aws_access_key_id = {{ $v.AWS_ACCESS_KEY_ID }}
    aws_secret_access_key = {{ $v.AWS_SECRET_ACCESS_KEY }}
    {{- if $v.AWS_SESSION_TOKEN }}
    aws_session_token = {{ $v.AWS_SESSION_TOKEN }}
    {{- end }}
    region = {{ $v.AWS_DEFAULT_REGION }}
  credentials.json: {{ dict "Version" 1 "AccessKeyId" $v.AWS_ACCESS_KEY_ID "SecretAccessKey" $v.AWS_SECRET_ACCESS_KEY "SessionToken" $v.AWS_SESSION_TOKEN | toJson | quote }}
  config: |
    [default]
    region = {{ $v.AWS_DEFAULT_REGION }}
    [profile onyxia]
    region = {{ $v.AWS_DEFAULT_REGION }}
    credential_process = cat /var/run/secrets/onyxia/s3/credentials.json
{{- end -}}
{{- end -}}

{{/*
library.s3.env: container env entries (a YAML list, place under `env:` with nindent), only when
s3.enabled. Each AWS_* variable reads the Secret; AWS_SHARED_CREDENTIALS_FILE points at the mount.
*/}}
{{- define "library.s3.env" -}}
{{- if include "library.s3.enabled" . -}}
{{- $secret := include "library.s3.secretName" . -}}
{{- $v := include "library.s3.values" . | fromYaml -}}
{{- $keys := list "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" "AWS_SESSION_TOKEN" "AWS_DEFAULT_REGION" "AWS_S3_ENDPOINT" -}}
{{- if $v.AWS_S3_ENDPOINT -}}{{- $keys = concat $keys (list "AWS_ENDPOINT_URL" "S3_ENDPOINT") -}}{{- end -}}
{{- if $v.AWS_BUCKET_NAME -}}{{- $keys = append $keys "AWS_BUCKET_NAME" -}}{{- end -}}
{{- range $keys }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ . }}
{{- end }}
- name: AWS_SHARED_CREDENTIALS_FILE
  value: /var/run/secrets/onyxia/s3/credentials
- name: AWS_CONFIG_FILE
  value: /var/run/secrets/onyxia/s3/config
{{- end -}}
{{- end -}}

{{/* library.s3.volume: a pod volume entry (YAML list item), only when s3.enabled. */}}
{{- define "library.s3.volume" -}}
{{- if include "library.s3.enabled" . -}}
- name: s3-credentials
  secret:
    secretName: {{ include "library.s3.secretName" . }}
    defaultMode: 0440
    items:
      - key: credentials
        path: credentials
      - key: credentials.json
        path: credentials.json
      - key: config
        path: config
{{- end -}}
{{- end -}}

{{/* library.s3.volumeMount: a container volumeMount entry (YAML list item), only when s3.enabled. */}}
{{- define "library.s3.volumeMount" -}}
{{- if include "library.s3.enabled" . -}}
- name: s3-credentials
  mountPath: /var/run/secrets/onyxia/s3
  readOnly: true
{{- end -}}
{{- end -}}
