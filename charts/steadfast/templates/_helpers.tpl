{{/*
Naming, labels and the helpers that turn one `experiments` entry into the values its CronJob
and ConfigMap use. Everything here fails rendering with a message naming the values key rather
than producing a manifest the API server would reject.
*/}}

{{- define "steadfast.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "steadfast.fullname" -}}
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

{{- define "steadfast.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "steadfast.selectorLabels" -}}
app.kubernetes.io/name: {{ include "steadfast.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "steadfast.labels" -}}
helm.sh/chart: {{ include "steadfast.chart" . }}
{{ include "steadfast.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: steadfast
{{- end -}}

{{- define "steadfast.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "steadfast.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Cluster-scoped objects carry the namespace so two releases of the same name never collide. */}}
{{- define "steadfast.clusterRoleName" -}}
{{- printf "%s-%s" .Release.Namespace (include "steadfast.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "steadfast.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
Name of an experiment's CronJob and ConfigMap. A CronJob name may have at most 52 characters
(the controller appends an 11-character suffix to name its Jobs).
Input: dict "ctx" $ "name" <experiment key>
*/}}
{{- define "steadfast.experimentResourceName" -}}
{{- $full := printf "%s-%s" (include "steadfast.fullname" .ctx) .name -}}
{{- if gt (len $full) 52 -}}
{{- fail (printf "experiments.%s: the CronJob name %q is longer than 52 characters; hint: shorten the experiment key or set fullnameOverride" .name $full) -}}
{{- end -}}
{{- $full -}}
{{- end -}}

{{/*
The Experiment document of one entry, as YAML text: the inline `spec` object, or the chart file
named by `file` verbatim (comments kept).
Input: dict "ctx" $ "name" <experiment key> "entry" <values entry>
*/}}
{{- define "steadfast.experimentDocument" -}}
{{- $entry := .entry -}}
{{- if and $entry.spec $entry.file -}}
{{- fail (printf "experiments.%s: set either spec or file, not both" .name) -}}
{{- else if $entry.spec -}}
{{- toYaml $entry.spec -}}
{{- else if $entry.file -}}
{{- $text := .ctx.Files.Get $entry.file -}}
{{- if not $text -}}
{{- fail (printf "experiments.%s.file: %q is not a file in the chart (or is empty); hint: put it under charts/steadfast/ or inline the experiment as spec" .name $entry.file) -}}
{{- end -}}
{{- $text -}}
{{- else -}}
{{- fail (printf "experiments.%s: needs spec (the Experiment inline) or file (a path in the chart)" .name) -}}
{{- end -}}
{{- end -}}

{{/*
Whole seconds in a steadfast duration such as `90s`, `10m`, `1h30m`, `2d`, `500ms` (rounded up).
*/}}
{{- define "steadfast.durationSeconds" -}}
{{- $total := 0 -}}
{{- range $part := regexFindAll `[0-9]+(\.[0-9]+)?\s*(ns|us|ms|s|m|h|d)` (toString .) -1 -}}
{{- $n := regexFind `^[0-9]+` $part | atoi -}}
{{- $unit := regexFind `(ns|us|ms|s|m|h|d)$` $part -}}
{{- if eq $unit "d" -}}{{- $total = add $total (mul $n 86400) -}}
{{- else if eq $unit "h" -}}{{- $total = add $total (mul $n 3600) -}}
{{- else if eq $unit "m" -}}{{- $total = add $total (mul $n 60) -}}
{{- else if eq $unit "s" -}}{{- $total = add $total $n -}}
{{- else if eq $unit "ms" -}}{{- $total = add $total (div (add $n 999) 1000) -}}
{{- else -}}{{- $total = add $total 1 -}}
{{- end -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/*
The longest one run of the experiment may take: steadfast aborts and rolls back at the
experiment's spec.timeout, which defaults to 3 x duration + 5m (as in the spec). Empty when the
document names neither.
Input: the Experiment document (a map)
*/}}
{{- define "steadfast.experimentSeconds" -}}
{{- $timeout := dig "spec" "timeout" "" . -}}
{{- $duration := dig "spec" "duration" "" . -}}
{{- if $timeout -}}
{{- include "steadfast.durationSeconds" $timeout -}}
{{- else if $duration -}}
{{- add (mul 3 (include "steadfast.durationSeconds" $duration | atoi)) 300 -}}
{{- end -}}
{{- end -}}

{{/*
The Job's activeDeadlineSeconds: the experiment's timeout plus job.deadlineMarginSeconds (time to
start and to roll back after its own timeout). Kubernetes sends SIGTERM at the deadline and
steadfast rolls back within terminationGracePeriodSeconds, so an explicit value below timeout +
grace period would cut runs short and fails rendering.
Input: dict "ctx" $ "name" <experiment key> "entry" <values entry> "doc" <Experiment map>
*/}}
{{- define "steadfast.activeDeadlineSeconds" -}}
{{- $job := .ctx.Values.job -}}
{{- $length := include "steadfast.experimentSeconds" .doc -}}
{{- if .entry.activeDeadlineSeconds -}}
{{- $explicit := .entry.activeDeadlineSeconds | int -}}
{{- if $length -}}
{{- $minimum := add ($length | atoi) ($job.terminationGracePeriodSeconds | int) -}}
{{- if lt $explicit $minimum -}}
{{- fail (printf "experiments.%s.activeDeadlineSeconds: %d is shorter than the experiment (%ss) plus job.terminationGracePeriodSeconds; hint: use at least %d or drop the key to derive it" .name $explicit $length $minimum) -}}
{{- end -}}
{{- end -}}
{{- $explicit -}}
{{- else if $length -}}
{{- add ($length | atoi) ($job.deadlineMarginSeconds | int) -}}
{{- else -}}
{{- $job.activeDeadlineSeconds | int -}}
{{- end -}}
{{- end -}}

{{/*
RBAC rules from rbac-rules.yaml, the chart's single list of permissions, filtered by scope.
Input: dict "ctx" $ "scope" ("cluster" | "namespaced" | "all")
*/}}
{{- define "steadfast.rbacRules" -}}
{{- $rules := (.ctx.Files.Get "rbac-rules.yaml" | fromYaml).rules -}}
{{- if not $rules -}}
{{- fail "rbac-rules.yaml is missing from the chart or has no rules" -}}
{{- end -}}
{{- $out := list -}}
{{- range $rule := $rules -}}
{{- if or (eq $.scope "all") (eq $rule.scope $.scope) -}}
{{- $out = append $out (dict "apiGroups" $rule.apiGroups "resources" $rule.resources "verbs" $rule.verbs) -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
The longest gap between two fires of a five-field cron expression, in seconds, erring long:
a day-of-month or month restriction counts as 31 days, a day-of-week one as 7 days, fixed
hours as a day, a step of N hours as N hours, fixed minutes as an hour and a step of N
minutes as N minutes. 0 for an expression that is not five fields (a `@daily` macro counts as a day).
*/}}
{{- define "steadfast.cronPeriodSeconds" -}}
{{- $cron := . | trim -}}
{{- $macros := dict "@hourly" 3600 "@daily" 86400 "@midnight" 86400 "@weekly" 604800 "@monthly" 2678400 "@yearly" 31622400 "@annually" 31622400 -}}
{{- if hasKey $macros $cron -}}
{{- get $macros $cron -}}
{{- else -}}
{{- $f := splitList " " (regexReplaceAll "\\s+" $cron " ") -}}
{{- if ne (len $f) 5 -}}
0
{{- else if or (ne (index $f 2) "*") (ne (index $f 3) "*") -}}
2678400
{{- else if ne (index $f 4) "*" -}}
604800
{{- else if regexMatch "^\\*/[0-9]+$" (index $f 1) -}}
{{- mul 3600 (trimPrefix "*/" (index $f 1) | int) -}}
{{- else if ne (index $f 1) "*" -}}
86400
{{- else if regexMatch "^\\*/[0-9]+$" (index $f 0) -}}
{{- mul 60 (trimPrefix "*/" (index $f 0) | int) -}}
{{- else if eq (index $f 0) "*" -}}
60
{{- else -}}
3600
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Where runs write their reports: the S3 bucket when reports.s3.bucket is set, else the state
volume.
*/}}
{{- define "steadfast.reportDir" -}}
{{- $s3 := .Values.reports.s3 | default dict -}}
{{- if $s3.bucket -}}
{{- if $s3.prefix -}}
{{- printf "s3://%s/%s" $s3.bucket (trimAll "/" $s3.prefix) -}}
{{- else -}}
{{- printf "s3://%s" $s3.bucket -}}
{{- end -}}
{{- else -}}
{{- printf "%s/reports" .Values.reports.path -}}
{{- end -}}
{{- end -}}
