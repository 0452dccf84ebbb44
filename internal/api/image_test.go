package api

import (
	"testing"

	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
)

// TestFindingsListsUnscannedPlatforms: a platform without a report is
// listed, as the verdict's scan summary lists it, with no status.
func TestFindingsListsUnscannedPlatforms(t *testing.T) {
	sc := &store.Scan{Digest: "sha256:1", Repository: "quarantine/app", Reports: []store.PlatformReport{
		{Platform: "linux/amd64", Digest: "sha256:a", Report: &scan.Report{Status: scan.StatusOK, Packages: 3}},
		{Platform: "linux/arm64", Digest: "sha256:b"},
	}}
	got := Findings(sc, FindingsFilter{})
	if len(got.Platforms) != 2 || got.Platforms[1].Platform != "linux/arm64" || got.Platforms[1].Status != "" ||
		got.Platforms[0].Packages != 3 {
		t.Fatalf("platforms %+v, want both, arm64 without a status", got.Platforms)
	}
}
