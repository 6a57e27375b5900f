{{/*
library.ide.statefulset: the single-pod StatefulSet of an IDE (Jupyter, VSCode, RStudio...).
Call with a dict:

  {{ include "library.ide.statefulset" (dict
      "root" .                          (required) the chart's root context
      "container" "jupyter"             (required) container name (also the pod hostname)
      "command" (list "/bin/sh" "-c")   (optional) container command
      "args" (list "exec ...")          (optional) container args
      "port" 8888                       (optional) container port, default networking.service.port
      "workDir" "/home/onyxia/work"     (optional) where the persistent volume is mounted
      "env" (list (dict "name" "A" "value" "b"))   (optional) extra env entries
      "volumes" (list ...)              (optional) extra pod volumes
      "volumeMounts" (list ...)         (optional) extra container mounts
      "annotations" (dict ...)          (optional) extra pod annotations
  ) }}

Values read: service.image.{version,pullPolicy}, resources, persistence, securityContext,
environment.{user,group}, nodeSelector, tolerations, affinity, runtimeClassName,
imagePullSecrets, global.suspend, s3 (via library.s3.*), discovery.mlflow, security.password.
Env: PASSWORD (password Secret), PROJECT_USER/PROJECT_GROUP, the extra env, the S3 env and the
MLflow discovery env. The pod restarts when the password changes (checksum annotation); it does
NOT restart when S3 credentials are refreshed: the mounted credentials file is updated in place.
*/}}
{{- define "library.ide.statefulset" -}}
{{- $root := .root -}}
{{- $v := $root.Values.AsMap -}}
{{- $fullname := include "library.fullname" $root -}}
{{- $port := .port | default (dig "networking" "service" "port" 8080 $v) | int -}}
{{- $workDir := .workDir | default "/home/onyxia/work" -}}
{{- $persistent := dig "persistence" "enabled" false $v -}}
{{- $envUser := dig "environment" "user" "onyxia" $v | default "onyxia" -}}
{{- $envGroup := dig "environment" "group" "users" $v | default "users" -}}
{{- $password := dig "security" "password" "" $v | toString -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "library.labels" $root | nindent 4 }}
spec:
  serviceName: {{ $fullname }}
  replicas: {{ include "library.replicas" $root }}
  selector:
    matchLabels:
      {{- include "library.selectorLabels" $root | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "library.labels" $root | nindent 8 }}
      annotations:
        checksum/password: {{ printf "%s/%s/%s" $root.Release.Namespace $fullname $password | sha256sum | quote }}
        {{- with .annotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      hostname: {{ .container }}
      enableServiceLinks: false
      automountServiceAccountToken: false
      securityContext:
        {{- include "library.podSecurityContext" $root | nindent 8 }}
      {{- with (dig "imagePullSecrets" list $v) }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (dig "runtimeClassName" "" $v) }}
      runtimeClassName: {{ . | quote }}
      {{- end }}
      {{- with (dig "nodeSelector" dict $v) }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (dig "tolerations" list $v) }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (dig "affinity" dict $v) }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .container }}
          image: {{ required "service.image.version is required" (dig "service" "image" "version" "" $v) | quote }}
          imagePullPolicy: {{ dig "service" "image" "pullPolicy" "IfNotPresent" $v }}
          {{- with .command }}
          command:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with .args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- include "library.containerSecurityContext" $root | nindent 12 }}
          ports:
            - name: http
              containerPort: {{ $port }}
              protocol: TCP
          env:
            {{- include "library.password.env" $root | nindent 12 }}
            - name: PROJECT_USER
              value: {{ $envUser | quote }}
            - name: PROJECT_GROUP
              value: {{ $envGroup | quote }}
            - name: ROOT_PROJECT_DIRECTORY
              value: {{ $workDir | quote }}
            - name: IMAGE_NAME
              value: {{ dig "service" "image" "version" "" $v | quote }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- with (include "library.s3.env" $root) }}
            {{- . | trim | nindent 12 }}
            {{- end }}
            {{- with (include "library.discovery.mlflow" $root) }}
            {{- . | trim | nindent 12 }}
            {{- end }}
          {{- with (dig "resources" dict $v) }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          startupProbe:
            tcpSocket:
              port: http
            periodSeconds: 10
            failureThreshold: 60
          readinessProbe:
            tcpSocket:
              port: http
            periodSeconds: 10
          livenessProbe:
            tcpSocket:
              port: http
            periodSeconds: 30
            failureThreshold: 6
          volumeMounts:
            - name: home
              mountPath: {{ $workDir | quote }}
            - name: dshm
              mountPath: /dev/shm
            {{- with (include "library.s3.volumeMount" $root) }}
            {{- . | trim | nindent 12 }}
            {{- end }}
            {{- with .volumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: home
          {{- if $persistent }}
          persistentVolumeClaim:
            claimName: {{ include "library.pvc.name" $root }}
          {{- else }}
          emptyDir: {}
          {{- end }}
        - name: dshm
          emptyDir:
            medium: Memory
        {{- with (include "library.s3.volume" $root) }}
        {{- . | trim | nindent 8 }}
        {{- end }}
        {{- with .volumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end -}}
