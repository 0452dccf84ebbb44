package gate

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var (
	digestA = "sha256:" + strings.Repeat("a", 64)
	digestB = "sha256:" + strings.Repeat("b", 64)
)

// vexDoc builds an OpenVEX document around statements.
func vexDoc(statements ...string) string {
	return `{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex/1",
"author": "alice@example.com", "timestamp": "2026-11-01T00:00:00Z", "version": 1,
"statements": [` + strings.Join(statements, ",") + `]}`
}

// stmt builds a not_affected statement for cve on product.
func stmt(cve, product, expires string) string {
	return fmt.Sprintf(`{"vulnerability": {"name": %q}, "products": [{"@id": %q}],
"status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
"impact_statement": "not reachable", "expires": %q}`, cve, product, expires)
}

func TestLoadExceptions(t *testing.T) {
	doc := vexDoc(
		stmt("CVE-2023-0001", digestA, "2027-01-01T00:00:00Z"),
		`{"vulnerability": {"name": "CVE-2023-0002", "aliases": ["GHSA-xxxx"]},
		  "products": [{"@id": "pkg:oci/nginx@sha256%3A`+strings.Repeat("a", 64)+`?repository_url=reg.example.com/quarantine/nginx"}],
		  "status": "not_affected", "justification": "component_not_present",
		  "timestamp": "2026-11-02T00:00:00Z", "expires": "2027-01-01T00:00:00Z", "author": "bob"}`,
	)
	ex, err := LoadExceptions(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 2 {
		t.Fatalf("got %d exceptions", len(ex))
	}
	e0, e1 := ex[0], ex[1]
	if e0.ID != "https://example.com/vex/1#0" || e0.Author != "alice@example.com" || e0.Reason != "not reachable" ||
		!e0.Issued.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || e0.Products[0].Digest != digestA {
		t.Errorf("exception 0 = %+v", e0)
	}
	if e1.Author != "bob" || e1.Products[0].Repo != "quarantine/nginx" || e1.Products[0].Digest != digestA ||
		!e1.Issued.Equal(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("exception 1 = %+v", e1)
	}
}

func TestExceptionApplies(t *testing.T) {
	issued := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	expires := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	before, during := issued.Add(-time.Hour), issued.Add(time.Hour)
	mk := func(products ...string) Exception {
		e := Exception{CVE: "CVE-1", Aliases: []string{"GHSA-1"}, Issued: issued, Expires: expires}
		for _, p := range products {
			prod, err := parseProduct(p)
			if err != nil {
				t.Fatal(err)
			}
			e.Products = append(e.Products, prod)
		}
		return e
	}
	tests := []struct {
		name                string
		e                   Exception
		cve, digest, repo   string
		now                 time.Time
		wantApply, wantExpd bool
	}{
		{"digest", mk(digestA), "CVE-1", digestA, "quarantine/nginx", during, true, false},
		{"alias", mk(digestA), "GHSA-1", digestA, "quarantine/nginx", during, true, false},
		{"other digest", mk(digestA), "CVE-1", digestB, "quarantine/nginx", during, false, false},
		{"other cve", mk(digestA), "CVE-2", digestA, "quarantine/nginx", during, false, false},
		{"repo", mk("quarantine/nginx"), "CVE-1", digestB, "quarantine/nginx", during, true, false},
		{"repo glob", mk("quarantine/*"), "CVE-1", digestB, "quarantine/nginx", during, true, false},
		{"other repo", mk("quarantine/nginx"), "CVE-1", digestB, "quarantine/redis", during, false, false},
		{"repo@digest", mk("quarantine/nginx@" + digestA), "CVE-1", digestB, "quarantine/nginx", during, false, false},
		{"purl repo", mk("pkg:oci/nginx?repository_url=localhost:5000/quarantine/nginx"), "CVE-1", digestB, "quarantine/nginx", during, true, false},
		{"expired", mk(digestA), "CVE-1", digestA, "quarantine/nginx", expires, false, true},
		{"expired other image", mk(digestA), "CVE-1", digestB, "quarantine/nginx", expires, false, false},
		{"not yet issued", mk(digestA), "CVE-1", digestA, "quarantine/nginx", before, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, e := tt.e.Applies(tt.cve, tt.digest, tt.repo, tt.now)
			if a != tt.wantApply || e != tt.wantExpd {
				t.Errorf("Applies = %v, %v; want %v, %v", a, e, tt.wantApply, tt.wantExpd)
			}
		})
	}
}

func TestLoadExceptionsErrors(t *testing.T) {
	good := stmt("CVE-1", digestA, "2027-01-01T00:00:00Z")
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"not json", "{", []string{"parsing OpenVEX"}},
		{"not openvex", `{"@context": "https://cyclonedx.org", "statements": []}`, []string{"@context"}},
		{"no name", vexDoc(stmt("", digestA, "2027-01-01T00:00:00Z")), []string{"statement 0", "vulnerability.name"}},
		{"no expiry", vexDoc(stmt("CVE-1", digestA, "")), []string{"statement 0", "expires: required"}},
		{"bad expiry", vexDoc(stmt("CVE-1", digestA, "next year")), []string{"expires", `"next year"`}},
		{"expiry before timestamp", vexDoc(stmt("CVE-1", digestA, "2020-01-01T00:00:00Z")), []string{"expires", "not after"}},
		{"bad digest", vexDoc(stmt("CVE-1", "sha256:abc", "2027-01-01T00:00:00Z")), []string{"products[0].@id", "bad digest"}},
		{"bad purl", vexDoc(stmt("CVE-1", "pkg:deb/debian/openssl", "2027-01-01T00:00:00Z")), []string{"products[0].@id", "pkg:oci"}},
		{"bad pattern", vexDoc(stmt("CVE-1", "quarantine/[", "2027-01-01T00:00:00Z")), []string{"products[0].@id", "pattern"}},
		{"affected", vexDoc(strings.Replace(good, `"not_affected"`, `"affected"`, 1)), []string{"status", "not_affected"}},
		{"no justification", vexDoc(strings.Replace(good, `"justification": "vulnerable_code_not_in_execute_path",`, "", 1)), []string{"justification: required"}},
		{"bad justification", vexDoc(strings.Replace(good, "vulnerable_code_not_in_execute_path", "trust_me", 1)), []string{"justification", `"trust_me"`}},
		{"no products", vexDoc(strings.Replace(good, `"products": [{"@id": "`+digestA+`"}],`, "", 1)), []string{"products: at least one"}},
		{"all statements", vexDoc(good, stmt("CVE-2", digestA, ""), stmt("CVE-3", "x@y", "2027-01-01T00:00:00Z")),
			[]string{"statement 1 (CVE-2)", "statement 2 (CVE-3)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadExceptions(strings.NewReader(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func FuzzLoadExceptions(f *testing.F) {
	f.Add(vexDoc(stmt("CVE-1", digestA, "2027-01-01T00:00:00Z")))
	f.Add(vexDoc(stmt("CVE-1", "pkg:oci/x@sha256%3A"+strings.Repeat("0", 64)+"?repository_url=h.io/q/x", "2027-01-01T00:00:00Z")))
	f.Add(vexDoc(stmt("CVE-1", "quarantine/*", "bad")))
	f.Add("{}")
	f.Fuzz(func(t *testing.T, in string) {
		ex, err := LoadExceptions(strings.NewReader(in))
		if err != nil {
			return
		}
		now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		for _, e := range ex {
			if e.CVE == "" || len(e.Products) == 0 || e.Expires.IsZero() {
				t.Fatalf("accepted incomplete exception %+v", e)
			}
			if a, x := e.Applies(e.CVE, digestA, "quarantine/x", now); a && x {
				t.Fatalf("applies and expired at once: %+v", e)
			}
			if a, _ := e.Applies(e.CVE, digestA, "quarantine/x", e.Expires); a {
				t.Fatalf("applies at its expiry: %+v", e)
			}
		}
	})
}
