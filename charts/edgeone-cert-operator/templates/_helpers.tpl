{{/*
The chart name, truncated to 63 characters (a DNS label).
*/}}
{{- define "edgeone-cert-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: the release name, plus the chart name unless the
release name already contains it. Distinct releases get distinct cluster-scoped names.
*/}}
{{- define "edgeone-cert-operator.fullname" -}}
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

{{- define "edgeone-cert-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels that select the operator's pods; never change on upgrade.
*/}}
{{- define "edgeone-cert-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edgeone-cert-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "edgeone-cert-operator.labels" -}}
helm.sh/chart: {{ include "edgeone-cert-operator.chart" . }}
{{ include "edgeone-cert-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: edgeone-cert-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "edgeone-cert-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "edgeone-cert-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "edgeone-cert-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Leader election is on with more than one replica, or when asked for.
*/}}
{{- define "edgeone-cert-operator.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}true{{ end }}
{{- end }}

{{- define "edgeone-cert-operator.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{- define "edgeone-cert-operator.leaseName" -}}
{{- default (include "edgeone-cert-operator.fullname" .) .Values.leaderElection.id }}
{{- end }}

{{- define "edgeone-cert-operator.createdSecretName" -}}
{{- printf "%s-credentials" (include "edgeone-cert-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The credentials mode: "existingSecret", "values", "tkePodIdentity" or "" (none). Fails
rendering when more than one is configured or one is configured half-way.
*/}}
{{- define "edgeone-cert-operator.credentialsMode" -}}
{{- $c := .Values.credentials }}
{{- $modes := list }}
{{- if $c.existingSecret }}{{ $modes = append $modes "existingSecret" }}{{ end }}
{{- if or $c.secretId $c.secretKey $c.token }}{{ $modes = append $modes "values" }}{{ end }}
{{- if $c.tkePodIdentity.enabled }}{{ $modes = append $modes "tkePodIdentity" }}{{ end }}
{{- if gt (len $modes) 1 }}
{{- fail (printf "credentials: choose one of credentials.existingSecret, credentials.secretId/secretKey and credentials.tkePodIdentity.enabled; %s are set" (join " and " $modes)) }}
{{- end }}
{{- if has "values" $modes }}
{{- if not (and $c.secretId $c.secretKey) }}
{{- fail "credentials: credentials.secretId and credentials.secretKey must both be set (or use credentials.existingSecret)" }}
{{- end }}
{{- end }}
{{- if has "tkePodIdentity" $modes }}
{{- range $key := list "roleArn" "providerId" "region" "audience" }}
{{- if not (get $c.tkePodIdentity $key) }}
{{- fail (printf "credentials: credentials.tkePodIdentity.enabled needs credentials.tkePodIdentity.%s" $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- first (concat $modes (list "")) }}
{{- end }}

{{/*
Where the projected token for TKE pod identity is mounted.
*/}}
{{- define "edgeone-cert-operator.tkeTokenDir" -}}
/var/run/secrets/edgeone-cert-operator/tke-oidc
{{- end }}

{{/*
The RBAC rules of the operator outside leader election: exactly the calls in
src/controller (watches, reads, patches, events). Used by the ClusterRole, or by the
Role in the watched namespace.
*/}}
{{- define "edgeone-cert-operator.rules" -}}
# Bindings: watched and cached; finalizers are added and removed with a JSON patch.
{{- if .Values.certificateDrivenBindings }}
# Certificate-driven bindings are server-side applied (patch; create on first apply)
# and deleted when the annotation goes.
{{- end }}
- apiGroups: ["edgeone.operators.dev"]
  resources: ["edgeonecertificatebindings"]
  verbs: ["get", "list", "watch", "patch"{{ if .Values.certificateDrivenBindings }}, "create", "delete"{{ end }}]
- apiGroups: ["edgeone.operators.dev"]
  resources: ["edgeonecertificatebindings/status"]
  verbs: ["get", "patch"]
# Secrets: watched by metadata only, referenced ones read on demand. Nothing else.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# cert-manager Certificates: certificateRef sources and certificate-driven bindings.
- apiGroups: ["cert-manager.io"]
  resources: ["certificates"]
  verbs: ["get", "list", "watch"]
{{- if .Values.certificateDrivenBindings }}
# A binding owned by a Certificate sets blockOwnerDeletion, which the
# OwnerReferencesPermissionEnforcement admission plugin (e.g. OpenShift) allows only
# to who may update the owner's finalizers.
- apiGroups: ["cert-manager.io"]
  resources: ["certificates/finalizers"]
  verbs: ["update"]
{{- end }}
# Events (kube-rs' Recorder writes events.k8s.io/v1; core for older clusters).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
