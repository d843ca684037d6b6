{{/* Name of everything this release creates. */}}
{{- define "formpipe.fullname" -}}
{{- if contains "formpipe" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-formpipe" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Recommended labels; pass (dict "ctx" $ "component" "operator"). */}}
{{- define "formpipe.labels" -}}
app.kubernetes.io/name: formpipe
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: formpipe
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version }}
{{- end -}}

{{- define "formpipe.selectorLabels" -}}
app.kubernetes.io/name: formpipe
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* registry/repository:tag of one binary; pass (dict "ctx" $ "image" .Values.image.ingest). */}}
{{- define "formpipe.image" -}}
{{- $reg := .ctx.Values.image.registry -}}
{{- $tag := default .ctx.Chart.AppVersion .image.tag -}}
{{- if $reg -}}{{ printf "%s/%s:%s" $reg .image.repository $tag }}{{- else -}}{{ printf "%s:%s" .image.repository $tag }}{{- end -}}
{{- end -}}

{{/* The Secret of the operator's own Kafka admin client as JSON {name, key}:
kafka.adminConfigSecret, else kafka.configSecret; "" when neither names one. */}}
{{- define "formpipe.kafkaAdminSecret" -}}
{{- $s := .Values.kafka.adminConfigSecret | default dict -}}
{{- if not $s.name }}{{ $s = .Values.kafka.configSecret }}{{ end -}}
{{- if $s.name }}{{ dict "name" $s.name "key" ($s.key | default "client.properties") | toJson }}{{ end -}}
{{- end -}}

{{- define "formpipe.secretRef" -}}
{{- if .name -}}{{ printf "%s:%s" .name .key }}{{- end -}}
{{- end -}}

{{/* The operator's --pod-defaults file (JSON): pipelines.pods, the release's
imagePullSecrets as the default's when it names none. */}}
{{- define "formpipe.podDefaults" -}}
{{- $pods := deepCopy .Values.pipelines.pods -}}
{{- $default := default dict $pods.default -}}
{{- if and .Values.imagePullSecrets (not (hasKey $default "imagePullSecrets")) -}}
{{- $_ := set $default "imagePullSecrets" .Values.imagePullSecrets -}}
{{- end -}}
{{- $_ := set $pods "default" $default -}}
{{- toJson $pods -}}
{{- end -}}
