package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/store/storetest"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// TestCVERouteAdvisoryExemption: an exception written for a fix
// advisory (DSA-5555-1) is shown on the CVEs that advisory fixes, read
// from the digest's stored scan, and not on the image's other CVEs.
func TestCVERouteAdvisoryExemption(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, dbtest.SQLite(t).Opener(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	fixed := storetest.Finding("CVE-2024-1", "libssl3", "openssl", vulndb.SeverityHigh, "3.0.1")
	fixed.FixedBy = []string{"DSA-5555-1"}
	other := storetest.Finding("CVE-2024-2", "libssl3", "openssl", vulndb.SeverityHigh, "3.0.2")
	other.FixedBy = []string{"DSA-5600-1"}
	d := storetest.Digest(1)
	if err := s.PutScan(ctx, storetest.ScanOf(d, "quarantine/app", map[string][]scan.Finding{"": {fixed, other}})); err != nil {
		t.Fatal(err)
	}
	im := store.Image{Repository: "quarantine/app", Verdict: gate.Verdict{State: gate.StateFail, Applied: []string{"exception/3"}}}
	if _, err := s.UpdateImage(ctx, d, func(*store.Image) (*store.Image, error) { return &im, nil }); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	exs := fakeExceptions{now: now, list: []exceptions.Exception{{ID: 3, Scope: exceptions.ScopeDigest, Digest: d, CVE: "DSA-5555-1",
		Reason: "declined", Author: "root", Created: now.Add(-time.Hour), Expires: now.Add(time.Hour)}}}
	h := Handler(Options{Gate: &fakeGate{}, Index: s, Scans: s, Exceptions: exs, Authorize: allowOnly("pull quarantine")})
	for cve, want := range map[string]int{"CVE-2024-1": 1, "CVE-2024-2": 0} {
		code, b := get(t, h, "/api/v1/cves/"+cve)
		var w WhereResponse
		if err := json.Unmarshal(b, &w); err != nil || code != http.StatusOK || len(w.Images) != 1 {
			t.Fatalf("GET %s: %d %s", cve, code, b)
		}
		if got := w.Images[0].Exemptions; len(got) != want || want == 1 && (got[0].ID != 3 || got[0].CVE != "DSA-5555-1") {
			t.Errorf("%s: exemptions %+v, want %d", cve, got, want)
		}
	}
}
