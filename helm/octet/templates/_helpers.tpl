{{/* Chart name, overridable with nameOverride. */}}
{{- define "octet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name prefix: <release>-<chart>, or the release name when it already contains it. */}}
{{- define "octet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "octet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "octet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "octet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "octet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: model-server
{{- end -}}

{{- define "octet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "octet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "octet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Seconds the kubelet waits after starting termination: preStop sleep, then the server's drain,
     then a margin, so a draining server is never SIGKILLed. */}}
{{- define "octet.terminationGracePeriodSeconds" -}}
{{- if lt (int .Values.lifecycle.terminationGraceMarginSeconds) 1 -}}
{{- fail "lifecycle.terminationGraceMarginSeconds must be at least 1: the grace period has to exceed preStop sleep + server.drainGraceSeconds" -}}
{{- end -}}
{{- add (int .Values.lifecycle.preStopSleepSeconds) (int .Values.server.drainGraceSeconds) (int .Values.lifecycle.terminationGraceMarginSeconds) -}}
{{- end -}}

{{/* Validates models.* and says whether an emptyDir repository is assembled ("true"/""). */}}
{{- define "octet.modelsAssembled" -}}
{{- $source := .Values.models.source -}}
{{- if not (has $source (list "image" "pvc" "initContainer")) -}}
{{- fail (printf "models.source must be image, pvc or initContainer, not %q" $source) -}}
{{- end -}}
{{- if and (eq $source "pvc") .Values.models.configs -}}
{{- fail "models.configs is not supported with models.source=pvc: keep each config.pbtxt in the volume, where the server reloads it" -}}
{{- end -}}
{{- if or (eq $source "initContainer") (and (eq $source "image") .Values.models.configs) -}}
true
{{- end -}}
{{- end -}}
