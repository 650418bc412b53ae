{{/*
Names and labels. Selector labels stay minimal (name + instance) because a Deployment's selector
is immutable: anything that changes between chart versions must not be in it.
*/}}

{{/* Chart name, overridable. */}}
{{- define "mfo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: <release>-<chart>, or just the release name when it already contains the chart name. */}}
{{- define "mfo.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart label value: name-version. */}}
{{- define "mfo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object the chart creates. */}}
{{- define "mfo.labels" -}}
helm.sh/chart: {{ include "mfo.chart" . }}
{{ include "mfo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: model-freshness
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels: the minimum that identifies this release's operator pods. */}}
{{- define "mfo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mfo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The operator's ServiceAccount name. */}}
{{- define "mfo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mfo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Operator image reference: digest wins over tag; the tag defaults to appVersion. */}}
{{- define "mfo.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Default trainer image for the Jobs (FRESHNESS_TRAINER_IMAGE). */}}
{{- define "mfo.trainerImage" -}}
{{- printf "%s:%s" .Values.trainerImage.repository (default .Chart.AppVersion .Values.trainerImage.tag) }}
{{- end }}

{{/*
Namespaces the operator watches, as a list; empty in cluster-wide mode.
Fails when mode is "namespaces" without any (the schema says so too; this guards --set-json edge cases).
*/}}
{{- define "mfo.watchNamespaces" -}}
{{- if eq .Values.watch.mode "namespaces" }}
{{- if not .Values.watch.namespaces }}
{{- fail "watch.namespaces must list at least one namespace when watch.mode is \"namespaces\"" }}
{{- end }}
{{- join "," .Values.watch.namespaces }}
{{- end }}
{{- end }}

{{/*
RBAC rules on namespaced resources, exactly the docs/contracts.md table. Shared by the ClusterRole
(cluster-wide mode) and the per-namespace Roles (namespaces mode).
*/}}
{{- define "mfo.namespacedRules" -}}
- apiGroups: ["modelfreshness.io"]
  resources: ["modeldeployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["modelfreshness.io"]
  resources: ["modeldeployments/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# The headless Service of a multi-node candidate (spec.training.nodes > 1): made and deleted, never read.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["create", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
Fail early, naming the fix, when a Prometheus Operator object is enabled and its CRDs are missing
(Helm's own error, "no matches for kind", comes late and names neither the value nor the CRDs).
*/}}
{{- define "mfo.requireMonitoringCRDs" -}}
{{- if and .Values.requireMonitoringCRDs (not (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) }}
{{- fail (printf "%s=true needs the Prometheus Operator's CRDs (API monitoring.coreos.com/v1), which this cluster does not serve: install the Prometheus Operator (e.g. kube-prometheus-stack) first, or set %s=false. Rendering offline? Pass --api-versions monitoring.coreos.com/v1 to helm template." .what .what) }}
{{- end }}
{{- end }}

{{/* Cluster-scoped read of the CRD (kopf checks the resource exists before watching). */}}
{{- define "mfo.crdRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/*
Leader election: the checks the values schema cannot make (it compares no two fields), with the
setting to change. The operator refuses the same at start (FRESHNESS_* in its message).
*/}}
{{- define "mfo.checkLeaderElection" -}}
{{- $le := .Values.leaderElection }}
{{- if $le.enabled }}
{{- if not (lt (int $le.renewDeadline) (int $le.leaseDuration)) }}
{{- fail (printf "leaderElection.renewDeadline (%v) must be less than leaderElection.leaseDuration (%v): a leader stops acting at renewDeadline, a standby may start at leaseDuration" $le.renewDeadline $le.leaseDuration) }}
{{- end }}
{{- if not (lt (mulf $le.retryPeriod 1.2) (float64 $le.renewDeadline)) }}
{{- fail (printf "leaderElection.retryPeriod (%v) must be less than leaderElection.renewDeadline / 1.2 (%v): a leader must get more than one try to renew" $le.retryPeriod $le.renewDeadline) }}
{{- end }}
{{- end }}
{{- end }}
