# The CustomResourceDefinitions in crds/ are generated from the Rust types in src/api/
# by `edgeone-cert-operator crd`; tests/crd_files.rs fails when they are out of date,
# tests/helm_chart.rs when the chart's copy or deploy/ differs (see mk/chart.mk).
# Included from the main Makefile.

CRD_FILE := crds/edgeone.operators.dev_edgeonecertificatebindings.yaml

.PHONY: crds

## crds: regenerate crds/ from src/api/, the chart's copy and deploy/ (run after
## changing the API types, then commit)
crds:
	$(CARGO) run -q -- crd > $(CRD_FILE).tmp
	mv $(CRD_FILE).tmp $(CRD_FILE)
	$(MAKE) --no-print-directory chart-crds deploy-manifests
