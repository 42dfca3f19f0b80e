{{- define "frpc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "frpc.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "frpc.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "frpc.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "frpc.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{- define "frpc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "frpc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "frpc.labels" -}}
{{ include "frpc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* (list NAME VALUE): VALUE, base64 of a PEM file, re-encoded on one line; fails otherwise. */}}
{{- define "frpc.pem" -}}
{{- $pem := index . 1 | b64dec -}}
{{- if not (hasPrefix "-----BEGIN " $pem) -}}
{{- fail (printf "%s must be the base64 of a PEM file (base64 -w0 FILE)" (index . 0)) -}}
{{- end -}}
{{- $pem | b64enc -}}
{{- end -}}

{{/* Whether the chart makes the certificates Secret from values. */}}
{{- define "frpc.certsFromValues" -}}
{{- $f := .Values.frpc -}}
{{- if eq .Values.mode "daemonset" -}}
{{- if .Values.nodeCertificates }}true{{ end -}}
{{- else if or $f.client.crt $f.client.key -}}
{{- if not (and $f.client.crt $f.client.key $f.ca.crt) -}}
{{- fail "frpc.client.crt, frpc.client.key and frpc.ca.crt go together: give all three, or none and frpc.existingSecret" -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{- define "frpc.certsSecret" -}}
{{- if include "frpc.certsFromValues" . -}}
{{- printf "%s-certs" (include "frpc.fullname" .) -}}
{{- else -}}
{{- default (printf "%s-certs" (include "frpc.fullname" .)) .Values.frpc.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "frpc.toml" -}}
{{- $f := .Values.frpc -}}
{{- $a := $f.apiserver -}}
# Rendered by the frpc Helm chart from its values.
serverAddr = {{ toJson $f.serverAddr }}
serverPort = {{ int $f.serverPort }}

[transport.tls]
certFile = "/etc/frp/certs/client.crt"
keyFile = "/etc/frp/certs/client.key"
trustedCaFile = "/etc/frp/certs/ca.crt"
{{- with $f.serverName }}
serverName = {{ toJson . }}
{{- end }}
{{- if $a.enabled }}

[[proxies]]
name = {{ toJson $a.name }}
type = {{ toJson $a.type }}
localIP = {{ toJson $a.localIP }}
localPort = {{ int $a.localPort }}
{{- if eq $a.type "tcp" }}
remotePort = {{ int $a.remotePort }}
{{- else if eq $a.type "https" }}
customDomains = [{{ required "frpc.apiserver.domain is required with type https" $a.domain | toJson }}]
{{- else }}
{{- fail "frpc.apiserver.type must be tcp or https (TLS stays end to end)" }}
{{- end }}
{{- end }}
{{- with $f.extra }}

{{ . }}
{{- end }}
{{- end -}}
