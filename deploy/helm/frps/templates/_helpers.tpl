{{- define "frps.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "frps.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "frps.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "frps.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "frps.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{- define "frps.serviceName" -}}
{{- default (include "frps.fullname" .) .Values.service.name -}}
{{- end -}}

{{- define "frps.selectorLabels" -}}
app.kubernetes.io/name: {{ include "frps.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "frps.labels" -}}
{{ include "frps.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Certificates from values: all three or none. */}}
{{- define "frps.certsFromValues" -}}
{{- $f := .Values.frps -}}
{{- if or $f.server.crt $f.server.key $f.ca.crt -}}
{{- if not (and $f.server.crt $f.server.key $f.ca.crt) -}}
{{- fail "frps.server.crt, frps.server.key and frps.ca.crt go together: give all three, or none and frps.existingSecret" -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{/* (list NAME VALUE): VALUE, base64 of a PEM file, re-encoded on one line; fails otherwise. */}}
{{- define "frps.pem" -}}
{{- $pem := index . 1 | b64dec -}}
{{- if not (hasPrefix "-----BEGIN " $pem) -}}
{{- fail (printf "%s must be the base64 of a PEM file (base64 -w0 FILE)" (index . 0)) -}}
{{- end -}}
{{- $pem | b64enc -}}
{{- end -}}

{{- define "frps.certsSecret" -}}
{{- if include "frps.certsFromValues" . -}}
{{- printf "%s-certs" (include "frps.fullname" .) -}}
{{- else -}}
{{- default (printf "%s-certs" (include "frps.fullname" .)) .Values.frps.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* Whether a container port is below 1024. */}}
{{- define "frps.privilegedPorts" -}}
{{- $c := .Values.frps.config -}}
{{- $low := false -}}
{{- range $p := list $c.bindPort $c.vhostHTTPSPort $c.vhostHTTPPort .Values.frps.webServer.port -}}
{{- if and $p (lt (int $p) 1024) }}{{ $low = true }}{{ end -}}
{{- end -}}
{{- if $low }}true{{ end -}}
{{- end -}}

{{/* Every tcp proxy port allowPorts allows, one per line. */}}
{{- define "frps.tcpPorts" -}}
{{- range .Values.frps.config.allowPorts -}}
{{- if .single }}
{{ .single }}
{{- else }}
{{- range untilStep (int .start) (add1 (int .end) | int) 1 }}
{{ . }}
{{- end }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* frps.toml; $password is the webServer password. */}}
{{- define "frps.toml" -}}
{{- $c := .root.Values.frps.config -}}
{{- $w := .root.Values.frps.webServer -}}
# Rendered by the frps Helm chart from its values.
bindAddr = "0.0.0.0"
bindPort = {{ int $c.bindPort }}
{{- if $c.vhostHTTPSPort }}
vhostHTTPSPort = {{ int $c.vhostHTTPSPort }}
{{- end }}
{{- if $c.vhostHTTPPort }}
vhostHTTPPort = {{ int $c.vhostHTTPPort }}
{{- end }}
{{- with $c.allowPorts }}
allowPorts = [
{{- range $i, $p := . }}{{ if $i }}, {{ end }}
{{- if $p.single }}{ single = {{ int $p.single }} }{{ else }}{ start = {{ int $p.start }}, end = {{ int $p.end }} }{{ end }}
{{- end }}]
{{- end }}
{{- with $c.allowDomains }}
allowDomains = {{ toJson . }}
{{- end }}
{{- with $c.subDomainHost }}
subDomainHost = {{ toJson . }}
{{- end }}
gracefulShutdownTimeout = {{ int $c.gracefulShutdownTimeout }}

[transport.tls]
certFile = "/etc/frp/certs/server.crt"
keyFile = "/etc/frp/certs/server.key"
trustedCaFile = "/etc/frp/certs/ca.crt"
{{- if $w.enabled }}

[webServer]
addr = "0.0.0.0"
port = {{ int $w.port }}
user = {{ toJson $w.user }}
password = {{ toJson .password }}
{{- end }}
{{- with $c.extra }}

{{ . }}
{{- end }}
{{- end -}}
