// Package trivycompat holds a test that decodes drydock's trivy-json golden
// report (internal/scan/testdata/report.trivy.json) into Trivy's own report
// types (github.com/aquasecurity/trivy/pkg/types) and checks that it
// round-trips. It is a separate module so that Trivy's large dependency tree
// stays out of drydock's go.mod.
//
// Run: make trivycompat (or cd hack/trivycompat && go test ./...)
package trivycompat
