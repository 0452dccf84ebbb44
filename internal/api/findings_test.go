package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/vulndb"
)

const testDigest = "sha256:4c1e5d6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d"

type fakeScans map[string]*store.Scan

func (f fakeScans) Scan(_ context.Context, d string) (*store.Scan, error) {
	if sc, ok := f[d]; ok {
		return sc, nil
	}
	return nil, fmt.Errorf("digest %s: %w", d, store.ErrNotFound)
}

func finding(id, pkg string, sev vulndb.Severity, st vulndb.Status, fixed string) scan.Finding {
	return scan.Finding{VulnerabilityID: id, PkgName: pkg, SrcName: pkg + "-src", InstalledVersion: "1", Severity: sev, Status: st, FixedVersion: fixed}
}

func get(t *testing.T, h http.Handler, path string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.Bytes()
}

func TestFindingsRoute(t *testing.T) {
	scans := fakeScans{testDigest: {Digest: testDigest, Repository: "quarantine/app", Reports: []store.PlatformReport{
		{Platform: "linux/amd64", Digest: "sha256:a", Report: &scan.Report{Status: scan.StatusOK, Packages: 90, OS: scan.OS{Family: "debian", ID: "debian", Name: "Debian GNU/Linux", Version: "12.5"}, Findings: []scan.Finding{
			finding("CVE-2024-1", "libc6", vulndb.SeverityHigh, vulndb.StatusFixed, "2"),
			finding("CVE-2024-2", "zlib1g", vulndb.SeverityLow, vulndb.StatusAffected, ""),
			finding("CVE-2024-3", "openssl", vulndb.SeverityCritical, vulndb.StatusFixed, "3"),
		}}},
		{Platform: "linux/arm64", Digest: "sha256:b", Report: &scan.Report{Status: scan.StatusOK, Findings: []scan.Finding{
			finding("CVE-2024-1", "libc6", vulndb.SeverityHigh, vulndb.StatusFixed, "2"),
		}}},
	}}}
	h := Handler(Options{Gate: &fakeGate{}, Scans: scans, Authorize: allowOnly("pull quarantine")})
	q := "/api/v1/findings?digest=" + testDigest
	tests := []struct {
		name, query string
		code        int
		want        []string // VulnerabilityID@platform, in order
		wantErr     string   // a word of the message
	}{
		{"all, highest first", "", 200, []string{"CVE-2024-3@linux/amd64", "CVE-2024-1@linux/amd64", "CVE-2024-1@linux/arm64", "CVE-2024-2@linux/amd64"}, ""},
		{"severity list", "&severity=critical,LOW", 200, []string{"CVE-2024-3@linux/amd64", "CVE-2024-2@linux/amd64"}, ""},
		{"fixable", "&fixable=false", 200, []string{"CVE-2024-2@linux/amd64"}, ""},
		{"source package", "&package=openssl-src", 200, []string{"CVE-2024-3@linux/amd64"}, ""},
		{"cve and status", "&cve=cve-2024-1&status=fixed", 200, []string{"CVE-2024-1@linux/amd64", "CVE-2024-1@linux/arm64"}, ""},
		{"bad severity", "&severity=HUGE", 400, nil, "severity"},
		{"bad status", "&status=done", 400, nil, "status"},
		{"bad fixable", "&fixable=yes", 400, nil, "fixable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, h, q+tt.query)
			if code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, body)
			}
			if tt.wantErr != "" {
				var b ErrorBody
				if json.Unmarshal(body, &b) != nil || b.Error.Code != "INVALID" || !strings.HasPrefix(b.Error.Message, tt.wantErr+":") {
					t.Fatalf("error %s, want INVALID naming %s", body, tt.wantErr)
				}
				return
			}
			var resp FindingsResponse
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range resp.Findings {
				got = append(got, f.VulnerabilityID+"@"+f.Platform)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("findings %v, want %v", got, tt.want)
			}
			if resp.Total != 4 || len(resp.Platforms) != 2 || resp.Platforms[0].Packages != 90 || resp.Platforms[0].OS != "debian 12.5" {
				t.Errorf("total %d, platforms %+v", resp.Total, resp.Platforms)
			}
		})
	}
	code, body := get(t, h, q)
	var all FindingsResponse
	_ = json.Unmarshal(body, &all)
	if code != 200 || all.UniqueCVEs != 3 || all.Counts["HIGH"] != 2 || all.Fixable["HIGH"] != 2 || all.Fixable["LOW"] != 0 || all.Counts["LOW"] != 1 {
		t.Errorf("counts %+v fixable %+v unique %d", all.Counts, all.Fixable, all.UniqueCVEs)
	}
	for path, want := range map[string]int{
		"/api/v1/findings":                                          400,
		"/api/v1/findings?digest=sha256:nothex":                     400,
		"/api/v1/findings?digest=" + testDigest[:70]:                400,
		"/api/v1/findings?digest=sha256:" + strings.Repeat("0", 64): 404,
	} {
		if code, body := get(t, h, path); code != want || (want == 400 && !strings.Contains(string(body), "digest:")) {
			t.Errorf("%s: %d %s, want %d", path, code, body, want)
		}
	}
	denied := Handler(Options{Gate: &fakeGate{}, Scans: scans, Authorize: allowOnly("pull live")})
	if code, body := get(t, denied, q); code != 403 {
		t.Errorf("without pull on quarantine: %d %s", code, body)
	}
	// Nor does it learn which digests have no scan: a missing one is
	// refused like a present one.
	if code, body := get(t, denied, "/api/v1/findings?digest=sha256:"+strings.Repeat("0", 64)); code != 403 {
		t.Errorf("without pull on quarantine, a digest without a scan: %d %s, want 403", code, body)
	}
}

func TestAuditRoute(t *testing.T) {
	// 1200 entries, more than two windows: every 100th a refused bypass.
	log, h, page := auditFixture(t, 1200, 100)
	p := page("")
	if len(p.Entries) != DefaultAuditLimit || p.Entries[0].Seq != 1200 || p.Entries[49].Seq != 1151 || p.NextBefore != 1151 || p.Head != 1200 {
		t.Fatalf("first page: %d entries from %d, next %d", len(p.Entries), p.Entries[0].Seq, p.NextBefore)
	}
	// Walk every page of the refused bypasses: 12, newest first, none twice.
	var seqs []int64
	for query := "?action=bypass_refused&limit=5"; ; {
		p := page(query)
		for _, e := range p.Entries {
			if e.Action != audit.ActionBypassRefused {
				t.Fatalf("entry %d is a %s", e.Seq, e.Action)
			}
			seqs = append(seqs, e.Seq)
		}
		if p.NextBefore == 0 {
			break
		}
		query = fmt.Sprintf("?action=bypass_refused&limit=5&before=%d", p.NextBefore)
	}
	if len(seqs) != 12 || seqs[0] != 1200 || seqs[11] != 100 {
		t.Errorf("bypass pages: %v", seqs)
	}
	if p := page("?before=3&limit=10"); len(p.Entries) != 2 || p.NextBefore != 0 {
		t.Errorf("last page: %+v", p)
	}
	for query, field := range map[string]string{"?before=0": "before", "?before=x": "before", "?limit=501": "limit", "?limit=0": "limit", "?action=dance": "action"} {
		code, body := get(t, h, "/api/v1/audit"+query)
		if code != 400 || !strings.Contains(string(body), `"message": "`+field+`:`) {
			t.Errorf("%s: %d %s, want 400 naming %s", query, code, body, field)
		}
	}
	nonAdmin := Handler(Options{Gate: &fakeGate{}, Audit: log, Authorize: allowOnly("pull quarantine")})
	if code, _ := get(t, nonAdmin, "/api/v1/audit"); code != 403 {
		t.Errorf("without admin: %d, want 403", code)
	}
}

// auditFixture is an audit log of n entries, alice's pushes with every
// every-th a refused bypass by mallory, and the API serving it to an
// admin; page reads GET /api/v1/audit with query.
func auditFixture(t *testing.T, n, every int) (*audit.Log, http.Handler, func(query string) AuditPage) {
	t.Helper()
	ctx := context.Background()
	dbs, err := database.NewOpener(database.Config{}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log, closeLog, err := audit.Open(ctx, dbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLog() })
	for i := 1; i <= n; i++ {
		e := audit.Entry{Actor: "alice", Action: audit.ActionPush, Repository: "quarantine/app", Outcome: audit.OutcomeOK}
		if i%every == 0 {
			e.Action, e.Outcome, e.Actor = audit.ActionBypassRefused, audit.OutcomeRefused, "mallory"
		}
		if _, err := log.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	h := Handler(Options{Gate: &fakeGate{}, Audit: log, Authorize: allowOnly("admin ")})
	return log, h, func(query string) AuditPage {
		t.Helper()
		code, body := get(t, h, "/api/v1/audit"+query)
		if code != 200 {
			t.Fatalf("%s: %d %s", query, code, body)
		}
		var p AuditPage
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
}
