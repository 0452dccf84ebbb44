package main

import (
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
)

func TestScanWithoutDatabase(t *testing.T) {
	_, _, err := runCmd(t, "scan", "oci:/nonexistent:x", "--data", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "drydock db update") {
		t.Fatalf("scan without a database: %v", err)
	}
}

func TestScanFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--pkg-types", "os,library"}, "library scanning not supported"},
		{[]string{"--format", "xml"}, "--format"},
		{[]string{"--severity", "HIGH,SEVERE"}, "unknown severity"},
		{[]string{"--exit-code", "300"}, "--exit-code"},
		{[]string{"--platform", "linux/"}, "--platform"},
	} {
		_, _, err := runCmd(t, append([]string{"scan", "oci:/nonexistent:x", "--data", t.TempDir()}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

// TestScanRealData builds a database from the real feed files with "drydock
// db update" and scans the test images with the real clock: bullseye is
// end-of-life (its LTS ended 2026-08-31), bookworm is supported.
func TestScanRealData(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real-data database (-short)")
	}
	dir := vulndatatest.Dir(t)
	data := t.TempDir()
	args := []string{"db", "update", "--data", data}
	for src, files := range map[string][]string{
		"osv":            {"osv/Debian/all.zip"},
		"debian-tracker": {"debian-security-tracker/data/DSA/list", "debian-security-tracker/data/DLA/list"},
		"distro-info":    {"debian-eol/distro-info-data/2026.10.12-1/debian.csv"},
		"debian-security-support": {"debian-eol/debian-security-support/14+2026.05.07/security-support.deb11",
			"debian-eol/debian-security-support/14+2026.05.07/security-support.deb12"},
	} {
		args = append(args, "--only", src)
		for _, f := range files {
			args = append(args, "--source", src+"="+filepath.Join(dir, f))
		}
	}
	if out, errOut, err := runCmd(t, args...); err != nil {
		t.Fatalf("db update: %v\n%s\n%s", err, out, errOut)
	}
	bullseye := testimage.Require(t, testimage.BullseyeNginxCurl)
	bookworm := testimage.Require(t, testimage.BookwormNginx)

	t.Run("bullseye end-of-life fails --exit-code", func(t *testing.T) {
		out, errOut, err := runCmd(t, "scan", bullseye.OCIReference(), "--data", data, "--exit-code", "1", "--ignore-unfixed")
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 1 {
			t.Fatalf("exit: %v", err)
		}
		if !strings.HasPrefix(out, "END OF LIFE: Debian GNU/Linux 11 (bullseye) is end-of-life: public security support ended 2026-08-31") {
			t.Errorf("table does not start with the end-of-life notice:\n%s", firstLines(out, 3))
		}
		if !strings.Contains(out, "Total: ") || !strings.Contains(out, "CVE-2024-8096") {
			t.Errorf("table:\n%s", out)
		}
		if !strings.Contains(errOut, "vulnerability database "+filepath.Join(data, "vulndb", "drydock-vuln.db")) {
			t.Errorf("stderr does not name the database:\n%s", errOut)
		}
		// Without --exit-code the scan succeeds.
		if _, _, err := runCmd(t, "scan", bullseye.OCIReference(), "--data", data); err != nil {
			t.Errorf("without --exit-code: %v", err)
		}
	})

	t.Run("patch --vulnerable-only plans the fixable packages", func(t *testing.T) {
		out, errOut, err := runCmd(t, "patch", bullseye.OCIReference(), "--data", data, "--allow-eol", "--dry-run", "--format", "json")
		if err != nil {
			t.Fatalf("patch: %v\n%s", err, errOut)
		}
		var sum struct {
			Platforms []struct {
				Plan struct {
					Changes []struct {
						Package   string
						Requested bool
					}
				}
			}
		}
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		requested := map[string]bool{}
		for _, c := range sum.Platforms[0].Plan.Changes {
			requested[c.Package] = c.Requested
		}
		// The requested packages are exactly those drydock scan reports
		// fixable findings for.
		rep, _, err := runCmd(t, "scan", bullseye.OCIReference(), "--data", data, "--format", "json", "--ignore-unfixed")
		if err != nil {
			t.Fatal(err)
		}
		var findings struct {
			Findings []struct{ PkgName, FixedVersion string }
		}
		if err := json.Unmarshal([]byte(rep), &findings); err != nil {
			t.Fatal(err)
		}
		fixable := map[string]bool{}
		for _, f := range findings.Findings {
			if f.FixedVersion != "" {
				fixable[f.PkgName] = true
			}
		}
		if len(fixable) == 0 {
			t.Fatal("no fixable finding in bullseye: the test proves nothing")
		}
		for p := range fixable {
			if !requested[p] {
				t.Errorf("%s has fixable findings but is not requested", p)
			}
		}
		for p, r := range requested {
			if r && !fixable[p] {
				t.Errorf("%s requested without a fixable finding", p)
			}
		}
	})

	t.Run("a rescan uses the stored inventory", func(t *testing.T) {
		for _, tc := range []struct {
			extra  []string
			cached bool
		}{{nil, true}, {[]string{"--no-inventory-cache"}, false}} {
			out, _, err := runCmd(t, append([]string{"scan", bullseye.OCIReference(), "--data", data, "--format", "json"}, tc.extra...)...)
			if err != nil {
				t.Fatal(err)
			}
			var rep scan.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.InventoryCached != tc.cached || len(rep.Findings) == 0 {
				t.Errorf("scan %v: inventoryCached=%v findings=%d, want cached=%v", tc.extra, rep.InventoryCached, len(rep.Findings), tc.cached)
			}
		}
	})

	t.Run("bookworm trivy-json and exit codes", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "report.json")
		_, errOut, err := runCmd(t, "scan", bookworm.OCIReference(), "--data", data, "--format", "trivy-json", "--output", file, "--max-age", "1ns")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut, "stale") {
			t.Errorf("no stale warning with --max-age 1ns:\n%s", errOut)
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var tr scan.TrivyReport
		if err := json.Unmarshal(raw, &tr); err != nil {
			t.Fatal(err)
		}
		if tr.SchemaVersion != 2 || tr.Metadata.OS == nil || tr.Metadata.OS.Family != "debian" || tr.Metadata.OS.EOSL ||
			len(tr.Results) != 1 || len(tr.Results[0].Vulnerabilities) == 0 || tr.Metadata.ImageConfig.Architecture != "amd64" {
			t.Errorf("trivy report: %+v", tr)
		}
		// Unfixed findings only: --exit-code fails without --ignore-unfixed,
		// passes with it.
		_, _, err = runCmd(t, "scan", bookworm.OCIReference(), "--data", data, "--exit-code", "3", "--format", "json")
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 3 {
			t.Errorf("--exit-code 3: %v", err)
		}
		out, _, err := runCmd(t, "scan", bookworm.OCIReference(), "--data", data, "--exit-code", "3", "--ignore-unfixed", "--format", "json")
		if err != nil {
			t.Errorf("--exit-code 3 --ignore-unfixed: %v", err)
		}
		var rep scan.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.SchemaVersion != 1 || rep.Status != scan.StatusOK || len(rep.Findings) != 0 {
			t.Errorf("json report: %v %+v", err, rep)
		}
	})

	t.Run("quarantine repository on the server", func(t *testing.T) {
		srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		defer srv.Close()
		host := strings.TrimPrefix(srv.URL, "http://")
		img, err := bookworm.Open()
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.NewTag(host+"/quarantine/nginx:1.0", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		out, _, err := runCmd(t, "scan", "quarantine/nginx:1.0", "--server", srv.URL, "--data", data, "--format", "json")
		if err != nil {
			t.Fatal(err)
		}
		var rep scan.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Artifact.Name != "quarantine/nginx:1.0" || len(rep.Artifact.RepoDigests) != 1 || rep.Status != scan.StatusOK || len(rep.Findings) == 0 {
			t.Errorf("report: %+v", rep.Artifact)
		}
		byDigest := "quarantine/nginx@" + rep.Artifact.Digest
		out, _, err = runCmd(t, "scan", byDigest, "--server", srv.URL, "--data", data, "--format", "json")
		var rep2 scan.Report
		if err != nil || json.Unmarshal([]byte(out), &rep2) != nil || rep2.Artifact.Digest != rep.Artifact.Digest || len(rep2.Findings) != len(rep.Findings) {
			t.Errorf("scan %s: %v", byDigest, err)
		}
	})
}

// TestScanIndexPlatform scans one platform of a multi-platform index.
func TestScanIndexPlatform(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real-data database (-short)")
	}
	dir := vulndatatest.Dir(t)
	idx := testimage.RequireIndex(t, testimage.MultiArchTrixie, testimage.MultiArchSpecs)
	data := t.TempDir()
	if out, errOut, err := runCmd(t, "db", "update", "--data", data, "--only", "distro-info",
		"--source", "distro-info="+filepath.Join(dir, "debian-eol/distro-info-data/2026.10.12-1/debian.csv")); err != nil {
		t.Fatalf("db update: %v\n%s\n%s", err, out, errOut)
	}
	for _, p := range []string{"", "linux/arm64"} {
		args := []string{"scan", idx.OCIReference(), "--data", data, "--format", "json"}
		want := "linux/amd64"
		if p != "" {
			args, want = append(args, "--platform", p), p
		}
		out, _, err := runCmd(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var rep scan.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Artifact.Platform != want || rep.Artifact.Config == nil && rep.Packages == 0 || rep.OS.ID != "debian" {
			t.Errorf("%v: platform %q packages %d os %+v", args, rep.Artifact.Platform, rep.Packages, rep.OS)
		}
	}
	if _, _, err := runCmd(t, "scan", idx.OCIReference(), "--data", data, "--platform", "linux/s390x"); err == nil ||
		!strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("missing platform: %v", err)
	}
}

func firstLines(s string, n int) string {
	l := strings.SplitN(s, "\n", n+1)
	return strings.Join(l[:min(n, len(l))], "\n")
}
