{{/* Names and labels. */}}
{{- define "zcc-bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "zcc-bridge.fullname" -}}
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

{{- define "zcc-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zcc-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "zcc-bridge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "zcc-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "zcc-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "zcc-bridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Whether pods get the data volume (a claim) at /data: SQLite always; otherwise when persistence is on. */}}
{{- define "zcc-bridge.persistent" -}}
{{- if or (eq .Values.database.kind "sqlite") .Values.persistence.enabled }}true{{- end }}
{{- end }}

{{/*
Refuses what cannot work: several replicas on one SQLite database (one process owns it) or on a local-disk
archive, a postgres database without its Secret, and secrets written into `config` (a ConfigMap is not secret).
*/}}
{{- define "zcc-bridge.validate" -}}
{{- $v := .Values }}
{{- if and (gt (int $v.replicaCount) 1) (ne $v.database.kind "postgres") }}
{{- fail (printf "replicaCount is %d: several replicas need database.kind: postgres (a SQLite database belongs to one process)" (int $v.replicaCount)) }}
{{- end }}
{{- if and (eq $v.database.kind "postgres") (not $v.database.postgres.existingSecret) }}
{{- fail "database.kind is postgres: set database.postgres.existingSecret (a Secret holding the postgres:// URL under database.postgres.urlKey)" }}
{{- end }}
{{- $media := dig "storage" "media" "file://data/media" $v.config }}
{{- if and (gt (int $v.replicaCount) 1) (hasPrefix "file:" $media) (not $v.existingConfigSecret) }}
{{- fail (printf "replicaCount is %d but config.storage.media is %s: several replicas need a shared archive, s3://bucket/prefix or az://container/prefix" (int $v.replicaCount) $media) }}
{{- end }}
{{- if and (hasPrefix "file:" $media) (not (include "zcc-bridge.persistent" .)) (not $v.existingConfigSecret) }}
{{- fail (printf "config.storage.media is %s but persistence.enabled is false: the archive would be lost with the pod (enable persistence or use s3:// or az://)" $media) }}
{{- end }}
{{- $secretKeys := list
    (list "admin" "token") (list "storage" "database") (list "storage" "s3" "secret_access_key")
    (list "storage" "s3" "session_token") (list "storage" "azure" "access_key") (list "zoom" "client_secret")
    (list "zoom" "webhook_secret_token") (list "zoom" "webhook_secret_tokens") (list "media" "link_secret") }}
{{- range $path := $secretKeys }}
{{- $value := $v.config }}
{{- range $key := $path }}
{{- if kindIs "map" $value }}
{{- $value = get $value $key }}
{{- else }}
{{- $value = "" }}
{{- end }}
{{- end }}
{{- if $value }}
{{- fail (printf "config.%s is a secret: put it in the Secret named by existingSecret as ZCC_BRIDGE_%s (the database: database.postgres.existingSecret)" (join "." $path) (join "__" $path | upper)) }}
{{- end }}
{{- end }}
{{- range $sink := (dig "sinks" list $v.config) }}
{{- range $key := list "secrets" "client_secret" "token" }}
{{- if hasKey $sink $key }}
{{- fail (printf "config.sinks[%s].%s is a secret: give the whole configuration as existingConfigSecret instead of config" ($sink.name | default "?") $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $group := list (list "flow" "sources") (list "presence" "genesys") }}
{{- range $name, $source := (dig (index $group 0) (index $group 1) dict $v.config) }}
{{- range $key := list "token" "hmac_secret" "client_secret" }}
{{- if hasKey $source $key }}
{{- fail (printf "config.%s.%s.%s.%s is a secret: give the whole configuration as existingConfigSecret instead of config" (index $group 0) (index $group 1) $name $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
config.toml from the `config` tree. Not toToml: values files reach templates with every number as a float, and
toToml would write `30.0` where the server reads an integer. Sections are [tables]; what is nested deeper is
written inline; a number without a fraction is written as an integer.
*/}}
{{- define "zcc-bridge.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{- define "zcc-bridge.tomlValue" -}}
{{- $v := . }}
{{- if kindIs "string" $v }}{{ toJson $v }}
{{- else if kindIs "bool" $v }}{{ $v }}
{{- else if kindIs "float64" $v }}{{ if eq $v (floor $v) }}{{ int64 $v }}{{ else }}{{ $v }}{{ end }}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) }}{{ $v }}
{{- else if kindIs "slice" $v }}[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "zcc-bridge.tomlValue" $e }}{{ end }}]
{{- else if kindIs "map" $v }}{ {{- range $i, $k := keys $v | sortAlpha }}{{ if $i }},{{ end }} {{ include "zcc-bridge.tomlKey" $k }} = {{ include "zcc-bridge.tomlValue" (get $v $k) }}{{ end }} }
{{- else }}{{ fail (printf "config: %v (%s) cannot be written as TOML" $v (kindOf $v)) }}
{{- end }}
{{- end }}

{{- define "zcc-bridge.toml" -}}
{{- $config := . }}
{{- range $k := keys $config | sortAlpha }}
{{- $v := get $config $k }}
{{- if not (kindIs "map" $v) }}
{{ include "zcc-bridge.tomlKey" $k }} = {{ include "zcc-bridge.tomlValue" $v }}
{{- end }}
{{- end }}
{{- range $k := keys $config | sortAlpha }}
{{- $v := get $config $k }}
{{- if kindIs "map" $v }}

[{{ include "zcc-bridge.tomlKey" $k }}]
{{- range $sk := keys $v | sortAlpha }}
{{ include "zcc-bridge.tomlKey" $sk }} = {{ include "zcc-bridge.tomlValue" (get $v $sk) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
