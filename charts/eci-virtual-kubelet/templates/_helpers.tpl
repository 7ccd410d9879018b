{{/* Names, labels and the list of nodes this release runs. */}}

{{- define "eci-vk.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "eci-vk.fullname" -}}
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

{{- define "eci-vk.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eci-vk.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "eci-vk.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "eci-vk.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "eci-vk.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "eci-vk.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the AccessKey: the admin's, or the one this chart creates. */}}
{{- define "eci-vk.credentialsSecret" -}}
{{- if .Values.credentials.existingSecret }}
{{- .Values.credentials.existingSecret }}
{{- else }}
{{- printf "%s-credentials" (include "eci-vk.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
The virtual nodes as JSON: [{"node": name, "zone": zone-or-""}]. One process serves them all
(one Deployment of `replicas` taking turns through one leader Lease): with several zones, a
node per zone named `<nodeName>-<zone>` (VK_ZONE_VSWITCHES); else one node, `nodeName`.
*/}}
{{- define "eci-vk.nodes" -}}
{{- $nodes := list }}
{{- if gt (len .Values.zones) 1 }}
{{- range .Values.zones }}
{{- $nodes = append $nodes (dict "node" (printf "%s-%s" $.Values.nodeName .name) "zone" .name) }}
{{- end }}
{{- else }}
{{- $nodes = append $nodes (dict "node" .Values.nodeName "zone" (include "eci-vk.singleZone" .)) }}
{{- end }}
{{- toJson $nodes }}
{{- end }}

{{/* The zone of a single node: the one zone listed, or none. */}}
{{- define "eci-vk.singleZone" -}}
{{- if eq (len .Values.zones) 1 }}{{ (index .Values.zones 0).name }}{{ end }}
{{- end }}

{{/*
`--zone-vswitches` of several zones: `ZONE=vsw-1,vsw-2;ZONE2=vsw-3`. Each zone needs vSwitches
of its own (a vSwitch is in one zone); the top-level `vSwitches` serve a single node only.
*/}}
{{- define "eci-vk.zoneVSwitches" -}}
{{- $parts := list }}
{{- range $i, $z := .Values.zones }}
{{- if not $z.vSwitches }}
{{- fail (printf "zones[%d] (%s) has no vSwitches: with several zones each lists the vSwitches of its own zone" $i $z.name) }}
{{- end }}
{{- $parts = append $parts (printf "%s=%s" $z.name (join "," $z.vSwitches)) }}
{{- end }}
{{- join ";" $parts }}
{{- end }}

{{/* The ImageCache controller's leader Lease, named as `eci-vk run` names it. */}}
{{- define "eci-vk.leaderLease" -}}
{{- $name := printf "eci-vk-imagecache-%s" .Values.clusterName | lower }}
{{- with .Values.imageCache.class }}{{ $name = printf "%s-%s" $name . }}{{ end }}
{{- $name = regexReplaceAll "[^a-z0-9]" $name "-" | trunc 63 }}
{{- regexReplaceAll "-+$" $name "" }}
{{- end }}

{{- define "eci-vk.taint" -}}
{{- if .Values.taint.enabled }}
{{- if .Values.taint.value }}
{{- printf "%s=%s:%s" .Values.taint.key .Values.taint.value .Values.taint.effect }}
{{- else }}
{{- printf "%s:%s" .Values.taint.key .Values.taint.effect }}
{{- end }}
{{- else }}
{{- "none" }}
{{- end }}
{{- end }}

{{/* The Secret with the webhook's serving certificate: the admin's, or the chart's. */}}
{{- define "eci-vk.webhookSecret" -}}
{{- if .Values.webhook.existingSecret }}
{{- .Values.webhook.existingSecret }}
{{- else }}
{{- printf "%s-webhook-tls" (include "eci-vk.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
