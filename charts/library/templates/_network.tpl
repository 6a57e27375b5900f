{{/*
library.service: a ClusterIP Service "<fullname>" on networking.service.port (port name "http"),
targeting networking.service.targetPort (default: the same port).
*/}}
{{- define "library.service" -}}
{{- $port := dig "networking" "service" "port" 80 .Values.AsMap | int -}}
{{- $target := dig "networking" "service" "targetPort" $port .Values.AsMap | int -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "library.fullname" . }}
  labels:
    {{- include "library.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "library.selectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ $port }}
      targetPort: {{ $target }}
      protocol: TCP
{{- end -}}

{{/*
library.url: "https://<ingress.hostname>" (http when ingress.tls is false), or the in-cluster
service URL when there is no ingress.
*/}}
{{- define "library.url" -}}
{{- $ing := dig "ingress" dict .Values.AsMap -}}
{{- if and $ing.enabled $ing.hostname -}}
{{- if dig "tls" true $ing }}https{{ else }}http{{ end }}://{{ $ing.hostname }}
{{- else -}}
http://{{ include "library.fullname" . }}.{{ .Release.Namespace }}.svc:{{ dig "networking" "service" "port" 80 .Values.AsMap }}
{{- end -}}
{{- end -}}

{{/*
library.ingress: an Ingress "<fullname>" when ingress.enabled. Values:
  ingress.hostname (required), ingress.ingressClassName, ingress.path (default /),
  ingress.annotations, ingress.tls (default true), ingress.tlsSecretName,
  ingress.useCertManager + ingress.certManagerClusterIssuer,
  security.allowlist.enabled + security.allowlist.ip (string "a,b" or list).
Without cert-manager and without tlsSecretName the TLS block names no secret, so the
controller's default (wildcard) certificate is used.
*/}}
{{- define "library.ingress" -}}
{{- $ing := dig "ingress" dict .Values.AsMap -}}
{{- if $ing.enabled -}}
{{- $host := required "ingress.hostname is required when ingress.enabled is true" $ing.hostname -}}
{{- $tls := dig "tls" true $ing -}}
{{- $certManager := and $tls $ing.useCertManager $ing.certManagerClusterIssuer -}}
{{- $allow := dig "security" "allowlist" dict .Values.AsMap -}}
{{- $fullname := include "library.fullname" . -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "library.labels" . | nindent 4 }}
  {{- $annotations := dict -}}
  {{- with $ing.annotations }}{{ $annotations = merge $annotations . }}{{ end -}}
  {{- if $certManager }}{{ $_ := set $annotations "cert-manager.io/cluster-issuer" $ing.certManagerClusterIssuer }}{{ end -}}
  {{- if $allow.enabled -}}
  {{- $ip := $allow.ip | default "0.0.0.0/0" -}}
  {{- if kindIs "slice" $ip }}{{ $ip = join "," $ip }}{{ end -}}
  {{- $_ := set $annotations "nginx.ingress.kubernetes.io/whitelist-source-range" (toString $ip) -}}
  {{- end }}
  {{- with $annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $ing.ingressClassName }}
  ingressClassName: {{ . | quote }}
  {{- end }}
  {{- if $tls }}
  tls:
    - hosts:
        - {{ $host | quote }}
      {{- if $ing.tlsSecretName }}
      secretName: {{ $ing.tlsSecretName | quote }}
      {{- else if $certManager }}
      secretName: {{ printf "tls-%s" $fullname | trunc 63 | trimSuffix "-" | quote }}
      {{- end }}
  {{- end }}
  rules:
    - host: {{ $host | quote }}
      http:
        paths:
          - path: {{ $ing.path | default "/" }}
            pathType: Prefix
            backend:
              service:
                name: {{ $fullname }}
                port:
                  number: {{ dig "networking" "service" "port" 80 .Values.AsMap | int }}
{{- end -}}
{{- end -}}

{{/*
library.networkPolicy: when security.networkPolicy.enabled, the release's pods accept ingress
traffic only from pods of the same namespace and from security.networkPolicy.from (a list of
NetworkPolicy peers; when unset: the namespace `ingress-nginx`). Egress is not restricted.
*/}}
{{- define "library.networkPolicy" -}}
{{- $np := dig "security" "networkPolicy" dict .Values.AsMap -}}
{{- if $np.enabled -}}
{{- $from := list (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" "ingress-nginx"))) -}}
{{- if hasKey $np "from" }}{{ $from = $np.from | default list }}{{ end -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "library.fullname" . }}
  labels:
    {{- include "library.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "library.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
  ingress:
    - from:
        - podSelector: {}
        {{- with $from }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- end -}}
{{- end -}}
