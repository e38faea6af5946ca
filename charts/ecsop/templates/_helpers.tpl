{{/* The chart's name. */}}
{{- define "ecsop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The fully qualified name of the release's objects. */}}
{{- define "ecsop.fullname" -}}
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

{{- define "ecsop.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ecsop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ecsop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ecsop.labels" -}}
helm.sh/chart: {{ include "ecsop.chart" . }}
{{ include "ecsop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "ecsop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ecsop.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ecsop.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
"true" when leader election is on: forced by leaderElection.enabled, or "auto" and replicas > 1.
Empty otherwise (so it can be used in `if`).
*/}}
{{- define "ecsop.leaderElection" -}}
{{- $setting := toString .Values.leaderElection.enabled -}}
{{- if eq $setting "true" -}}
true
{{- else if eq $setting "auto" -}}
{{- if gt (int .Values.replicas) 1 -}}true{{- end -}}
{{- else if eq $setting "false" -}}
{{- if gt (int .Values.replicas) 1 -}}
{{- fail "replicas > 1 needs leaderElection.enabled (true or auto): two replicas without a lease would both write to AWS" -}}
{{- end -}}
{{- else -}}
{{- fail (printf "leaderElection.enabled must be true, false or auto, not %q" $setting) -}}
{{- end -}}
{{- end -}}

{{- define "ecsop.leaseName" -}}
{{- default (printf "%s-leader" (include "ecsop.fullname" .)) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* The namespace whose ApiDeployments are watched, or empty for all namespaces. */}}
{{- define "ecsop.watchNamespace" -}}
{{- .Values.watch.namespace | default "" -}}
{{- end -}}

{{/*
A list of patterns as one anchored regular expression (RE2): `*` any run of characters, `?` one character
that is not a wildcard, anything else itself; an empty list matches nothing. The same construction as
`pattern_regex` in operator/src/api/tenancy.rs (a test compares the two). Call with
(dict "list" LIST "fold" BOOL); fold lower-cases (hosts).
*/}}
{{- define "ecsop.globRegex" -}}
{{- $parts := list -}}
{{- range (.list | default list) -}}
{{- $p := ternary (lower .) . $.fold -}}
{{- $parts = append $parts (regexQuoteMeta $p | replace "\\*" ".*" | replace "\\?" "[^*?]") -}}
{{- end -}}
{{- if $parts -}}
{{- printf "^(?:%s)$" (join "|" $parts) -}}
{{- else -}}
{{- "^[^\\s\\S]$" -}}
{{- end -}}
{{- end -}}

{{/* The indexes of a list, `0,1,2` (empty for none). */}}
{{- define "ecsop.indexes" -}}
{{- $out := list -}}
{{- range $i, $_ := . -}}
{{- $out = append $out (toString $i) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/*
CEL: the tenancy ConfigMap's key prefix (`t0`) of the first tenant whose namespaces match the request's
namespace, or '' when none does. (Keys are letters and digits only: evaluators differ in escaping others.)
*/}}
{{- define "ecsop.tenancyPrefix" -}}
(params.data['tenants'] == '' ? '' : (params.data['tenants'].split(',').filter(i, request.namespace.matches(params.data['t' + i + 'namespaces'])).size() > 0 ? 't' + params.data['tenants'].split(',').filter(i, request.namespace.matches(params.data['t' + i + 'namespaces']))[0] : ''))
{{- end -}}
