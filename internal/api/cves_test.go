package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/store/storetest"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// fakeExceptions lists fixed exceptions; the rest of the service is unused.
type fakeExceptions struct {
	unused
	list []exceptions.Exception
	now  time.Time
}

func (f fakeExceptions) Exceptions(_ context.Context, fl exceptions.Filter) ([]exceptions.Exception, error) {
	var out []exceptions.Exception
	for _, e := range f.list {
		if e.Active(fl.ActiveAt) {
			out = append(out, e)
		}
	}
	return out, nil
}
func (f fakeExceptions) Now() time.Time { return f.now }

// unused is the part of Exceptions the index routes never call.
type unused interface {
	Exception(ctx context.Context, id int64) (exceptions.Exception, error)
	CreateException(ctx context.Context, actor string, e exceptions.Exception) (*gatekeeper.ExceptionChange, error)
	RevokeException(ctx context.Context, actor string, id int64) (*gatekeeper.ExceptionChange, error)
	ExportExceptions(ctx context.Context, actor string, f exceptions.Filter) ([]byte, error)
}

// indexStore is a real SQLite store holding three scanned images: app
// (exempt from CVE-2024-1 by exception 1, promoted), other, and secret
// (in a namespace most callers may not pull).
func indexStore(t *testing.T) (*store.SQL, []string) {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, dbtest.SQLite(t).Opener(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	H, L := vulndb.SeverityHigh, vulndb.SeverityLow
	ds := []string{storetest.Digest(1), storetest.Digest(2), storetest.Digest(3)}
	for i, sc := range []store.Scan{
		storetest.ScanOf(ds[0], "quarantine/app", map[string][]scan.Finding{"": {storetest.Finding("CVE-2024-1", "libc6", "glibc", H, "2.1"),
			storetest.Finding("CVE-2024-2", "zlib1g", "zlib", L, "")}}),
		storetest.ScanOf(ds[1], "quarantine/other", map[string][]scan.Finding{"": {storetest.Finding("CVE-2024-1", "libc-bin", "glibc", H, "")}}),
		storetest.ScanOf(ds[2], "secret/app", map[string][]scan.Finding{"": {storetest.Finding("CVE-2024-1", "libc6", "glibc", H, "2.1")}}),
	} {
		if err := s.PutScan(ctx, sc); err != nil {
			t.Fatal(err)
		}
		v := gate.Verdict{State: gate.StateFail}
		if i == 0 {
			v = gate.Verdict{State: gate.StateExempt, Applied: []string{"exception/1", "exception/2"}}
		}
		im := store.Image{Repository: sc.Repository, Verdict: v, Promoted: i == 0}
		if _, err := s.UpdateImage(ctx, sc.Digest, func(*store.Image) (*store.Image, error) { return &im, nil }); err != nil {
			t.Fatal(err)
		}
	}
	return s, ds
}

func TestCVERoute(t *testing.T) {
	s, ds := indexStore(t)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	until := now.Add(30 * 24 * time.Hour)
	exs := fakeExceptions{now: now, list: []exceptions.Exception{
		{ID: 1, Scope: exceptions.ScopeDigest, Digest: ds[0], CVE: "CVE-2024-1", Reason: "<b>not reachable</b>", Author: "root", Created: now.Add(-time.Hour), Expires: until},
		{ID: 2, Scope: exceptions.ScopeGlobal, Package: "openssl", Reason: "other package", Created: now.Add(-time.Hour), Expires: until},
	}}
	h := Handler(Options{Gate: &fakeGate{}, Index: s, Exceptions: exs, Authorize: allowOnly("pull quarantine")})
	where := func(path string) WhereResponse {
		t.Helper()
		code, b := get(t, h, path)
		var w WhereResponse
		if err := json.Unmarshal(b, &w); err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		return w
	}

	w := where("/api/v1/cves/cve-2024-1")
	if w.CVE != "CVE-2024-1" || w.Digests != 2 || !w.FixAvailable || fmt.Sprint(w.Repositories) != "[quarantine/app quarantine/other]" ||
		fmt.Sprint(w.Namespaces) != "[live quarantine]" || len(w.Images) != 2 {
		t.Fatalf("CVE-2024-1: %+v", w)
	}
	app, other := w.Images[0], w.Images[1]
	if app.Digest != ds[0] || !app.Promoted || app.State != gate.StateExempt || !app.Fixable || fmt.Sprint(app.Namespaces) != "[quarantine live]" {
		t.Errorf("app: %+v", app)
	}
	// Exception 2 was applied to app's verdict, but covers another package.
	if len(app.Exemptions) != 1 || app.Exemptions[0].ID != 1 || !app.Exemptions[0].Expires.Equal(until) {
		t.Errorf("app's exemptions: %+v", app.Exemptions)
	}
	if other.Fixable || len(other.Exemptions) != 0 || other.State != gate.StateFail || other.Findings[0].Package != "libc-bin" {
		t.Errorf("other: %+v", other)
	}
	// An exception past its expiry exempts nothing any more.
	exs.now = until.Add(time.Second)
	h2 := Handler(Options{Gate: &fakeGate{}, Index: s, Exceptions: exs, Authorize: allowOnly("pull quarantine")})
	code, b := get(t, h2, "/api/v1/cves/CVE-2024-1")
	if code != 200 || strings.Contains(string(b), `"exemptions"`) {
		t.Errorf("after the expiry: %d %s", code, b)
	}

	// By package (binary or source), with its unique CVEs.
	if w := where("/api/v1/packages/glibc"); w.Digests != 2 || w.UniqueCVEs != 1 || w.Package != "glibc" {
		t.Errorf("glibc: %+v", w)
	}
	if w := where("/api/v1/packages/zlib1g"); w.Digests != 1 || w.FixAvailable {
		t.Errorf("zlib1g: %+v", w)
	}
	// Pages.
	if w := where("/api/v1/cves/CVE-2024-1?limit=1&page=2"); w.Pages != 2 || w.Page != 2 || len(w.Images) != 1 || w.Images[0].Digest != ds[1] || w.Digests != 2 {
		t.Errorf("page 2 of 1 image: %+v", w)
	}
	if w := where("/api/v1/cves/CVE-1999-0001"); w.Digests != 0 || len(w.Images) != 0 || w.Pages != 1 {
		t.Errorf("an unknown CVE: %+v", w)
	}

	// Totals and counts cover what the caller may pull.
	var tot TotalsResponse
	code, b = get(t, h, "/api/v1/findings/totals")
	if err := json.Unmarshal(b, &tot); err != nil || code != 200 || tot.Repositories != 2 || tot.UniqueCVEs != 2 || tot.Fixable["HIGH"] != 1 || tot.Counts["HIGH"] != 2 {
		t.Errorf("totals for a quarantine reader: %d %s", code, b)
	}
	admin := Handler(Options{Gate: &fakeGate{}, Index: s})
	code, b = get(t, admin, "/api/v1/findings/totals")
	if err := json.Unmarshal(b, &tot); err != nil || code != 200 || tot.Repositories != 3 || tot.Fixable["HIGH"] != 2 || tot.Counts["HIGH"] != 3 {
		t.Errorf("totals for everyone: %d %s", code, b)
	}
	var counts CountsResponse
	code, b = get(t, h, "/api/v1/findings/counts?"+url.Values{"digest": ds}.Encode())
	if err := json.Unmarshal(b, &counts); err != nil || code != 200 || len(counts.Images) != 2 || counts.Images[ds[0]].Fixable["HIGH"] != 1 {
		t.Errorf("counts for a quarantine reader: %d %s", code, b)
	}
	if w := where("/api/v1/cves/CVE-2024-1"); strings.Contains(fmt.Sprint(w), "secret") {
		t.Errorf("a quarantine reader sees secret/: %+v", w)
	}

	// The images list: what the caller may pull, paged, filtered.
	var ims ImagesResponse
	code, b = get(t, h, "/api/v1/images?limit=1&page=2")
	if err := json.Unmarshal(b, &ims); err != nil || code != 200 || ims.Total != 2 || ims.Pages != 2 || len(ims.Images) != 1 ||
		ims.Images[0].Repository != "quarantine/other" || fmt.Sprint(ims.ByState) != "map[exempt:1 fail:1]" {
		t.Errorf("images page 2 for a quarantine reader: %d %s", code, b)
	}
	code, b = get(t, h, "/api/v1/images?verdict=exempt&repository=app")
	if err := json.Unmarshal(b, &ims); err != nil || code != 200 || ims.Total != 1 || ims.Images[0].Digest != ds[0] {
		t.Errorf("exempt images of app: %d %s", code, b)
	}

	// Bad input names the field; a caller who may pull nowhere is refused.
	many := url.Values{}
	for range MaxCountsDigests + 1 {
		many.Add("digest", ds[0])
	}
	for path, field := range map[string]string{
		"/api/v1/cves/%3Cscript%3E":                             "id:",
		"/api/v1/cves/" + strings.Repeat("A", 200):              "id:",
		"/api/v1/packages/%20x":                                 "name:",
		"/api/v1/cves/CVE-2024-1?limit=0":                       "limit:",
		"/api/v1/cves/CVE-2024-1?limit=501":                     "limit:",
		"/api/v1/packages/glibc?page=x":                         "page:",
		"/api/v1/findings/counts":                               "digest:",
		"/api/v1/findings/counts?digest=sha256:zz":              "digest:",
		"/api/v1/findings/counts?" + many.Encode():              "digest:",
		"/api/v1/images?verdict=ok":                             "verdict:",
		"/api/v1/images?limit=1001":                             "limit:",
		"/api/v1/images?page=0":                                 "page:",
		"/api/v1/images?repository=" + strings.Repeat("x", 300): "repository:",
	} {
		code, b := get(t, h, path)
		if code != http.StatusBadRequest || !strings.Contains(string(b), field) {
			t.Errorf("GET %s: %d %s, want 400 naming %s", path, code, b, field)
		}
	}
	nobody := Handler(Options{Gate: &fakeGate{}, Index: s, Authorize: allowOnly("push quarantine")})
	for _, p := range []string{"/api/v1/cves/CVE-2024-1", "/api/v1/packages/glibc", "/api/v1/findings/totals", "/api/v1/findings/counts?digest=" + ds[0], "/api/v1/images"} {
		if code, b := get(t, nobody, p); code != http.StatusForbidden {
			t.Errorf("GET %s without pull: %d %s, want 403", p, code, b)
		}
	}
}
