# Shortcuts; each target is one script under hack/ (see README.md).
.PHONY: test demo controlplane crds deploy image

# The README's test command (what CI runs).
test:
	hack/test.sh

# Build everything, start a local control plane, install the chart's CRDs and RBAC, run the
# operator, apply examples/ and print `keysmith status -A` (DEMO_KEEP=1 keeps it running).
demo:
	hack/demo.sh

# A control plane for kubectl by hand, until Enter.
controlplane:
	hack/controlplane/up.sh

# Regenerate crds/ and the chart's copy from src/api.
crds:
	cargo run --quiet -- crds --output-dir crds
	cargo run --quiet -- crds --output-dir charts/keysmith/files/crds

# Re-render deploy/keysmith.yaml from the chart.
deploy:
	hack/render-deploy.sh

# The operator image as an OCI archive, without Docker (prints its path; SBOM beside it).
image:
	hack/image.sh
