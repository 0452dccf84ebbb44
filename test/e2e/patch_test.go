package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/drydock-project/drydock/internal/testimage"
)

func TestPatchHelp(t *testing.T) {
	r := mustDrydock(t, nil, "patch", "--help")
	for _, want := range []string{"-i, --image", "-r, --report", "--update-all", "-t, --tag", "--dry-run", "--sandbox",
		"--allow-eol", "--mirror", "--platform", "--output", "--force", "--vulnerable-only", "Examples:", "-patched", "Maintainer scripts",
		"auto", "always", "never", "subuid"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("patch --help lacks %q", want)
		}
	}
}

func TestPatchBadInput(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "report.txt")
	os.WriteFile(notJSON, []byte("not json"), 0o644)
	other := filepath.Join(dir, "other.json")
	os.WriteFile(other, []byte(`{"hello": 1}`), 0o644)
	img := "oci:" + dir + "/none:x"
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no image", []string{"patch", "--update-all"}, "no image"},
		{"no mode and no database", []string{"patch", img, "--data", dir}, "say what to update"},
		{"both modes", []string{"patch", img, "--update-all", "-r", other}, "one of --update-all"},
		{"image twice", []string{"patch", img, "-i", "oci:/elsewhere:y", "--update-all"}, "IMAGE given twice"},
		{"bad format", []string{"patch", img, "--update-all", "--format", "xml"}, `--format "xml"`},
		{"missing report", []string{"patch", img, "-r", filepath.Join(dir, "nope.json")}, "--report"},
		{"report not json", []string{"patch", img, "-r", notJSON}, "not JSON"},
		{"report other json", []string{"patch", img, "-r", other}, "not a Trivy"},
		{"bad tag", []string{"patch", img, "--update-all", "-t", "-bad"}, "not a valid tag"},
		{"bad platform", []string{"patch", img, "--update-all", "--platform", "linux"}, "--platform"},
		{"bad sandbox mode", []string{"patch", img, "--update-all", "--sandbox", "maybe"}, "--sandbox"},
		{"missing layout", []string{"patch", img, "--update-all"}, "none"},
		{"archive without output", []string{"patch", "docker-archive:" + filepath.Join(dir, "x.tar"), "--update-all"}, "--output"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := drydock(t, nil, c.args...)
			if r.Code == 0 || !strings.Contains(r.Stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", r.Code, r.Stderr, c.want)
			}
		})
	}
}

// downgradedLayout writes, as a new OCI layout under the ref of img, img
// with the named packages recorded one version older in its dpkg database
// (testimage.Downgraded).
func downgradedLayout(t *testing.T, img *testimage.Image, pkgs ...string) string {
	t.Helper()
	base, err := img.Open()
	if err != nil {
		t.Fatal(err)
	}
	down, err := testimage.Downgraded(base, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	return writeLayout(t, down, img.Ref)
}

// writeLayout writes img as a new OCI layout under ref and returns its
// directory (what "oci:DIR:REF" imports).
func writeLayout(t *testing.T, img v1.Image, ref string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		t.Fatal(err)
	}
	return dir
}

type patchSummary struct {
	Digest    string `json:"digest"`
	Output    string `json:"output"`
	Platforms []struct {
		Plan struct {
			Changes []struct {
				Package, From, To string
			} `json:"changes"`
			Reason string `json:"reason"`
		} `json:"plan"`
		Scripts []struct{ Package, Script, Action string } `json:"scripts"`
	} `json:"platforms"`
}

func TestPatchCLI(t *testing.T) {
	requireTool(t, "skopeo")
	img := testimage.Require(t, testimage.BookwormNginx)
	// The three packages the report names with fixes are recorded one
	// version older, so that the mirror always offers an update for each,
	// whatever its bookworm suites hold today.
	dir := downgradedLayout(t, img, "libssl3", "liblzma5", "libpcre2-8-0")
	src := "oci:" + dir + ":" + img.Ref

	// A Trivy-style report naming packages whose scripts drydock applies
	// natively (no sandbox needed), one with a fix not yet published, and
	// one the image does not have.
	report := filepath.Join(t.TempDir(), "trivy.json")
	os.WriteFile(report, []byte(`{"SchemaVersion": 2, "ArtifactName": "bookworm-nginx", "Results": [
	  {"Target": "x", "Class": "os-pkgs", "Type": "debian", "Vulnerabilities": [
	    {"VulnerabilityID": "CVE-A", "PkgName": "libssl3", "InstalledVersion": "0", "FixedVersion": "3.0.0-1"},
	    {"VulnerabilityID": "CVE-B", "PkgName": "liblzma5", "InstalledVersion": "0", "FixedVersion": "5.4.1-1+deb12u2"},
	    {"VulnerabilityID": "CVE-C", "PkgName": "libpcre2-8-0", "InstalledVersion": "0", "FixedVersion": "99:1.0"},
	    {"VulnerabilityID": "CVE-D", "PkgName": "not-installed", "InstalledVersion": "0", "FixedVersion": "1"}]},
	  {"Target": "app", "Class": "lang-pkgs", "Vulnerabilities": [{"VulnerabilityID": "CVE-E", "PkgName": "bash", "FixedVersion": "9"}]}]}`), 0o644)

	dry := mustDrydock(t, nil, "patch", "-i", src, "-r", report, "--dry-run")
	for _, want := range []string{"libssl3", "liblzma5", "not yet available: libpcre2-8-0", "dry run: nothing downloaded"} {
		if !strings.Contains(dry.Stdout, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, dry.Stdout)
		}
	}

	r := mustDrydock(t, nil, "patch", src, "-r", report, "--format", "json")
	var s patchSummary
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil {
		t.Fatalf("summary: %v\n%s", err, r.Stdout)
	}
	if s.Output != src+"-patched" || !strings.HasPrefix(s.Digest, "sha256:") {
		t.Errorf("summary output %q digest %q", s.Output, s.Digest)
	}
	var got []string
	for _, c := range s.Platforms[0].Plan.Changes {
		got = append(got, c.Package)
	}
	// libpcre2-8-0's fix is not published: its available update is still
	// installed, and the plan says the fix is missing (dry run above).
	if strings.Join(got, ",") != "liblzma5,libpcre2-8-0,libssl3" {
		t.Errorf("patched %v, want liblzma5, libpcre2-8-0 and libssl3", got)
	}
	inspect := runTool(t, "skopeo", "inspect", "--format", "{{.Digest}}", s.Output)
	if strings.TrimSpace(inspect) != s.Digest {
		t.Errorf("skopeo reads %s from %s, drydock wrote %s", inspect, s.Output, s.Digest)
	}

	// The same patch again: same digest, to another tag.
	r2 := mustDrydock(t, nil, "patch", src, "-r", report, "-t", "again", "--format", "json")
	var s2 patchSummary
	json.Unmarshal([]byte(r2.Stdout), &s2)
	if s2.Digest != s.Digest {
		t.Errorf("patching twice: %s then %s", s.Digest, s2.Digest)
	}

	// Patching the patched image: nothing to do, exit 0, nothing written.
	r3 := mustDrydock(t, nil, "patch", s.Output, "-r", report, "-t", "third")
	if !strings.Contains(r3.Stdout, "nothing to patch") {
		t.Errorf("second-generation patch:\n%s", r3.Stdout)
	}
	if out, err := exec.Command("skopeo", "inspect", "oci:"+dir+":third").CombinedOutput(); err == nil {
		t.Errorf("nothing to patch wrote a tag:\n%s", out)
	}
	r5 := mustDrydock(t, nil, "patch", s.Output, "-r", report, "-t", "forced", "--force", "--format", "json")
	var s5 patchSummary
	json.Unmarshal([]byte(r5.Stdout), &s5)
	if s5.Digest == "" || s5.Digest == s.Digest || !strings.HasSuffix(s5.Output, ":forced") {
		t.Errorf("--force with nothing to patch: %s", r5.Stdout)
	}

	// Through the drydock server: quarantine/NAME in, quarantine/NAME:TAG out.
	srv := startServe(t, "")
	server := []string{"--server", srv.URL()}
	mustDrydock(t, nil, append([]string{"import", "oci:" + downgradedLayout(t, img, "libssl3", "liblzma5", "libpcre2-8-0") + ":" + img.Ref, "--as", "nginx:1.22"}, server...)...)
	r4 := mustDrydock(t, nil, append([]string{"patch", "quarantine/nginx:1.22", "-r", report, "-t", "1.22-1", "--format", "json"}, server...)...)
	var s4 patchSummary
	json.Unmarshal([]byte(r4.Stdout), &s4)
	if !strings.HasSuffix(s4.Output, "/quarantine/nginx:1.22-1") {
		t.Errorf("server patch went to %q", s4.Output)
	}
	if d := digestOf(t, srv, "quarantine/nginx:1.22-1"); d.String() != s4.Digest {
		t.Errorf("server has %s, the patch reported %s", d, s4.Digest)
	}
}

func TestPatchCLIEndOfLife(t *testing.T) {
	if _, err := os.Stat("/usr/share/distro-info/debian.csv"); err != nil {
		requireTool(t, "distro-info-data-is-missing")
	}
	img := testimage.Require(t, testimage.BullseyeNginxCurl)
	r := drydock(t, nil, "patch", img.OCIReference(), "--update-all", "--dry-run")
	if r.Code == 0 || !strings.Contains(r.Stderr, "support ended on") || !strings.Contains(r.Stderr, "--allow-eol") {
		t.Fatalf("bullseye: exit %d\n%s", r.Code, r.Stderr)
	}
	r = mustDrydock(t, nil, "patch", img.OCIReference(), "--update-all", "--dry-run", "--allow-eol")
	if !strings.Contains(r.Stdout, "libc6") {
		t.Errorf("--allow-eol dry run lacks libc6:\n%s", r.Stdout)
	}
}
