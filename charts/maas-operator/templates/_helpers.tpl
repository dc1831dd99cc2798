{{/* Names and labels shared by every template. */}}

{{- define "maas-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the release name alone when it already contains the chart name. */}}
{{- define "maas-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "maas-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "maas-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "maas-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "maas-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: maas
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels the operator puts on every serving pod it creates (operator/src/reconcile/labels.ts). */}}
{{- define "maas-operator.servingPodLabels" -}}
app.kubernetes.io/managed-by: maas-operator
app.kubernetes.io/component: model-server
{{- end }}

{{- define "maas-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "maas-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "maas-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
ClusterRole and ClusterRoleBinding names carry the release namespace: they are cluster-scoped, and two
releases of the same name in different namespaces must not overwrite each other's.
*/}}
{{- define "maas-operator.clusterScopedName" -}}
{{- printf "%s-%s" (include "maas-operator.fullname" .) .Release.Namespace }}
{{- end }}
