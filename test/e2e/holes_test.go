package e2e

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/testimage"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// holesPolicy passes the distroless bookworm image (no fixable finding)
// and fails the bullseye one (fixable HIGH findings; end of life).
const holesPolicy = "version: v1\nmaxSeverity: MEDIUM\nfixableOnly: true\nblockEndOfLife: true\n"

// mallory holds pull, push and promote on every namespace, not admin:
// the adversary of #12.
const (
	mallory     = "mallory"
	malloryPass = "mallory-password"
)

// holes is a server under attack: anonymous access off, the real
// scanner and data, the passing image in quarantine/good:1 and the
// failing bullseye image in quarantine/bad:1, both imported by mallory.
type holes struct {
	s        *serveProc
	data     string
	srv      string   // mallory's server URL for the drydock CLI
	craneEnv []string // mallory's docker config for crane
	cr       string   // crane
	good     digest.Digest
	bad      digest.Digest
}

func startHoles(t *testing.T) *holes {
	t.Helper()
	requireTool(t, "skopeo")
	good := testimage.Require(t, testimage.DistrolessBookworm)
	bad := testimage.Require(t, testimage.BullseyeNginxCurl)
	data := t.TempDir()
	realdb.Copy(t, vulndb.DefaultPath(data))
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte(holesPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServeEnv(t, data, nil, "--config", writeConfig(t, "gate: {policy: "+policy+"}\n"))
	addUser(t, data, mallory, malloryPass, "pull:*", "push:*", "promote:*")
	h := &holes{s: s, data: data, srv: "http://" + mallory + ":" + malloryPass + "@" + s.Addr, cr: crane(t),
		craneEnv: []string{"DOCKER_CONFIG=" + dockerConfig(t, s.Addr, mallory, malloryPass)},
		good:     digest.Digest(good.Digest.String()), bad: digest.Digest(bad.Digest.String())}
	mustDrydock(t, nil, "import", good.OCIReference(), "--as", "good:1", "--server", h.srv)
	mustDrydock(t, nil, "import", bad.OCIReference(), "--as", "bad:1", "--server", h.srv)
	if st := waitVerdict(t, nil, h.srv, "quarantine/good:1"); st.Verdict.State != gate.StatePass {
		t.Fatalf("quarantine/good:1: %+v", st.Verdict)
	}
	if st := waitVerdict(t, nil, h.srv, "quarantine/bad:1"); st.Verdict.State != gate.StateFail {
		t.Fatalf("quarantine/bad:1: %+v", st.Verdict)
	}
	return h
}

// crane runs crane as mallory; it returns the output and whether it
// succeeded.
func (h *holes) crane(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	r := runCmd(t, h.craneEnv, h.cr, append(args, "--insecure")...)
	return r.out, r.ok
}

type cmdResult struct {
	out string
	ok  bool
}

func runCmd(t *testing.T, env []string, name string, args ...string) cmdResult {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return cmdResult{string(out), err == nil}
}

// raw sends one registry request as mallory.
func (h *holes) raw(t *testing.T, method, path string, body []byte, header ...string) (int, string) {
	t.Helper()
	return rawRequest(t, method, h.s.URL()+path, mallory, malloryPass, body, header...)
}

// pushBlob uploads data to repo in one request, as mallory.
func (h *holes) pushBlob(t *testing.T, repo string, data []byte, mediaType string) ocispec.Descriptor {
	t.Helper()
	d := digest.FromBytes(data)
	if code, b := h.raw(t, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), data, "Content-Type", "application/octet-stream"); code != http.StatusCreated {
		t.Fatalf("blob upload to %s: %d %s", repo, code, b)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
}

// putManifest PUTs v (marshalled) to repo as ref, as mallory, and
// returns its descriptor.
func (h *holes) putManifest(t *testing.T, repo, ref, mediaType string, v any) ocispec.Descriptor {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(b)
	if ref == "" {
		ref = d.String()
	}
	if code, body := h.raw(t, "PUT", "/v2/"+repo+"/manifests/"+ref, b, "Content-Type", mediaType); code != http.StatusCreated {
		t.Fatalf("manifest PUT %s:%s: %d %s", repo, ref, code, body)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

// manifestDesc reads repo:ref's descriptor as mallory.
func (h *holes) manifestDesc(t *testing.T, repo, ref string) ocispec.Descriptor {
	t.Helper()
	body := rawManifest(t, h.s.Addr, repo, ref, mallory, malloryPass)
	var m struct{ MediaType string }
	_ = json.Unmarshal(body, &m)
	return ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(body), Size: int64(len(body))}
}

// attestation pushes to repo a build attestation shaped as buildx lists
// it under unknown/unknown: a non-runnable artifact.
func (h *holes) attestation(t *testing.T, repo string) ocispec.Descriptor {
	t.Helper()
	cfg := h.pushBlob(t, repo, []byte(`{"_type":"https://in-toto.io/Statement/v0.1"}`), "application/vnd.in-toto+json")
	layer := h.pushBlob(t, repo, []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://slsa.dev/provenance/v0.2"}`), "application/vnd.in-toto+json")
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	return h.putManifest(t, repo, "", ocispec.MediaTypeImageManifest, m)
}

// assertLiveClean checks the acceptance of #12 for each failing digest:
// not pullable from any repository of the live namespace (by digest),
// tags (by tag, and by platform linux/amd64 with crane) resolving to none
// of them; and the audit log intact.
func (h *holes) assertLiveClean(t *testing.T, failing []digest.Digest, tags ...string) {
	t.Helper()
	code, body := h.raw(t, "GET", "/v2/_catalog?n=1000", nil)
	var cat struct{ Repositories []string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &cat) != nil {
		t.Fatalf("catalog: %d %s", code, body)
	}
	live := slices.DeleteFunc(cat.Repositories, func(r string) bool { return !imgref.IsLive(r) })
	for _, repo := range append(live, "live") {
		for _, d := range failing {
			if code, _ := h.raw(t, "HEAD", "/v2/"+repo+"/manifests/"+d.String(), nil,
				"Accept", ocispec.MediaTypeImageManifest+","+ocispec.MediaTypeImageIndex); code != http.StatusNotFound {
				t.Errorf("%s@%s: HEAD answers %d, want 404", repo, d, code)
			}
		}
	}
	for _, tag := range tags {
		for _, args := range [][]string{{"digest", h.s.Addr + "/" + tag}, {"digest", "--platform", "linux/amd64", h.s.Addr + "/" + tag}} {
			out, ok := h.crane(t, args...)
			if ok && slices.Contains(failing, digest.Digest(strings.TrimSpace(out))) {
				t.Errorf("crane %s resolves to a failing digest: %s", strings.Join(args, " "), out)
			}
		}
	}
	if v := mustDrydock(t, nil, "audit", "verify", "--data", h.data); !strings.HasPrefix(v.Stdout, "audit log intact: ") {
		t.Errorf("audit verify: %s", v.Stdout)
	}
}

// auditOf returns the audit entries matching keep.
func (h *holes) auditOf(t *testing.T, keep func(audit.Entry) bool) []audit.Entry {
	t.Helper()
	return auditOf(t, h.data, keep)
}

// TestGateHoles is the adversarial acceptance of #12, holes 1 to 3, as a
// user with pull, push and promote on every namespace, against a real
// server with the real scanner, data and test images, through crane,
// skopeo, the drydock CLI and raw HTTP. After each attempt nothing
// failing is pullable from live/ (by tag, by digest, by platform), the
// attempt was refused or audited, and `drydock audit verify` passes.
func TestGateHoles(t *testing.T) {
	h := startHoles(t)
	host := h.s.Addr

	// Hole 1: the repository named exactly "live".
	t.Run("the repository live itself is write-protected", func(t *testing.T) {
		badManifest := rawManifest(t, host, "quarantine/bad", "1", mallory, malloryPass)
		var m ocispec.Manifest
		if err := json.Unmarshal(badManifest, &m); err != nil {
			t.Fatal(err)
		}
		before := len(h.auditOf(t, func(e audit.Entry) bool { return e.Actor == mallory && e.Action == audit.ActionBypassRefused }))
		refusals := 0
		for _, b := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			code, body := h.raw(t, "POST", "/v2/live/blobs/uploads/?mount="+b.Digest.String()+"&from=quarantine/bad", nil)
			if code != http.StatusForbidden || !strings.Contains(body, "write-protected") {
				t.Errorf("blob mount into live: %d %s", code, body)
			}
			refusals++
		}
		for _, path := range []string{"/v2/live/manifests/prod", "/v2/live/manifests/" + h.bad.String()} {
			code, body := h.raw(t, "PUT", path, badManifest, "Content-Type", ocispec.MediaTypeImageManifest)
			if code != http.StatusForbidden || !strings.Contains(body, "write-protected") {
				t.Errorf("PUT %s: %d %s", path, code, body)
			}
			refusals++
		}
		if out, ok := h.crane(t, "copy", host+"/quarantine/bad:1", host+"/live:prod"); ok || !strings.Contains(out, "write-protected") {
			t.Errorf("crane copy into live:prod: ok=%v\n%s", ok, out)
		}
		if r := runCmd(t, nil, "skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
			"--src-creds", mallory+":"+malloryPass, "--dest-creds", mallory+":"+malloryPass,
			"docker://"+host+"/quarantine/bad:1", "docker://"+host+"/live:prod"); r.ok || !strings.Contains(r.out, "write-protected") {
			t.Errorf("skopeo copy into live:prod: ok=%v\n%s", r.ok, r.out)
		}
		if out, ok := h.crane(t, "tag", host+"/live:prod", "other"); ok {
			t.Errorf("crane tag in live: %s", out)
		}
		after := h.auditOf(t, func(e audit.Entry) bool { return e.Actor == mallory && e.Action == audit.ActionBypassRefused })
		if len(after)-before < refusals+2 {
			t.Errorf("%d refused live writes audited for mallory, want at least %d", len(after)-before, refusals+2)
		}
		if !slices.ContainsFunc(after, func(e audit.Entry) bool { return e.Repository == "live" && e.Reference == "prod" }) {
			t.Error("no audit entry names the repository live")
		}
		// A cluster credential sees nothing there either.
		tok := createToken(t, h.data, "cluster", "30d", "pull:live")
		if r := runCmd(t, nil, "skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", "cluster:"+tok, "docker://"+host+"/live:prod"); r.ok {
			t.Errorf("pull:live token pulls live:prod: %s", r.out)
		}
		h.assertLiveClean(t, []digest.Digest{h.bad}, "live:prod")
	})

	// Hole 2: indexes judged on part of their content.
	t.Run("an index's verdict covers every manifest reachable from it", func(t *testing.T) {
		if out, ok := h.crane(t, "index", "append", "-m", host+"/quarantine/bad:1", "-t", host+"/quarantine/inner:1"); !ok {
			t.Fatalf("crane index append: %s", out)
		}
		if out, ok := h.crane(t, "index", "append", "--flatten=false", "-m", host+"/quarantine/good:1", "-m", host+"/quarantine/inner:1",
			"-t", host+"/quarantine/nested:1"); !ok {
			t.Fatalf("crane index append of a nested index: %s", out)
		}
		// The failing image under platform unknown/unknown, next to a
		// build attestation there, by raw HTTP.
		for _, src := range []string{"good", "bad"} {
			if out, ok := h.crane(t, "copy", host+"/quarantine/"+src+":1", host+"/quarantine/hidden:"+src); !ok {
				t.Fatalf("crane copy: %s", out)
			}
		}
		on := func(d ocispec.Descriptor, os, arch string) ocispec.Descriptor {
			d.Platform = &ocispec.Platform{OS: os, Architecture: arch}
			return d
		}
		att := h.attestation(t, "quarantine/hidden")
		ix := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
			on(h.manifestDesc(t, "quarantine/hidden", "good"), "linux", "amd64"),
			on(h.manifestDesc(t, "quarantine/hidden", "bad"), "unknown", "unknown"),
			on(att, "unknown", "unknown"),
		}}
		ix.SchemaVersion = 2
		hidden := h.putManifest(t, "quarantine/hidden", "1", ocispec.MediaTypeImageIndex, ix)
		// The control: the passing image with the attestation only.
		ix.Manifests = []ocispec.Descriptor{ix.Manifests[0], ix.Manifests[2]}
		h.putManifest(t, "quarantine/hidden", "ok", ocispec.MediaTypeImageIndex, ix)

		nested := waitVerdict(t, nil, h.srv, "quarantine/nested:1")
		hid := waitVerdict(t, nil, h.srv, "quarantine/hidden:1")
		for _, st := range []struct {
			name string
			v    gate.Verdict
		}{{"nested", nested.Verdict}, {"hidden", hid.Verdict}} {
			text, _ := json.Marshal(st.v.Reasons)
			if st.v.State != gate.StateFail || !strings.Contains(string(text), h.bad.String()) {
				t.Errorf("%s index: %s, reasons do not name the failing image %s: %s", st.name, st.v.State, h.bad, text)
			}
		}
		if hid.Digest != hidden.Digest.String() {
			t.Errorf("hidden verdict is of %s, want %s", hid.Digest, hidden.Digest)
		}
		for _, src := range []string{"quarantine/nested:1", "quarantine/hidden:1", "quarantine/inner:1"} {
			if r := drydock(t, nil, "promote", src, "--server", h.srv); r.Code != 1 || !strings.Contains(r.Stderr, "refused") {
				t.Errorf("promote %s: exit %d\n%s", src, r.Code, r.Stderr)
			}
		}
		refused := h.auditOf(t, func(e audit.Entry) bool {
			return e.Actor == mallory && e.Action == audit.ActionPromotion && e.Outcome == audit.OutcomeRefused
		})
		if len(refused) < 3 {
			t.Errorf("%d refused promotions audited, want 3", len(refused))
		}
		// The control goes through: by platform, live/ holds the passing
		// image (so the checks below can see a promoted index).
		mustDrydock(t, nil, "promote", "quarantine/hidden:ok", "--server", h.srv)
		if out, ok := h.crane(t, "digest", "--platform", "linux/amd64", host+"/live/hidden:ok"); !ok || strings.TrimSpace(out) != h.good.String() {
			t.Errorf("crane digest --platform linux/amd64 live/hidden:ok = %q (%v), want %s", out, ok, h.good)
		}
		h.assertLiveClean(t, []digest.Digest{h.bad, hidden.Digest, digest.Digest(nested.Digest)},
			"live/nested:1", "live/hidden:1", "live/inner:1", "live/hidden:ok")
	})

	// Hole 3: a failing image carried as a referrer of a passing one.
	t.Run("a referrer follows only as an artifact or with its own pass", func(t *testing.T) {
		if out, ok := h.crane(t, "copy", host+"/quarantine/good:1", host+"/quarantine/app:1"); !ok {
			t.Fatalf("crane copy: %s", out)
		}
		if out, ok := h.crane(t, "copy", host+"/quarantine/bad:1", host+"/quarantine/app:carrier"); !ok {
			t.Fatalf("crane copy: %s", out)
		}
		subject := h.manifestDesc(t, "quarantine/app", "1")
		var m ocispec.Manifest
		if err := json.Unmarshal(rawManifest(t, host, "quarantine/app", "carrier", mallory, malloryPass), &m); err != nil {
			t.Fatal(err)
		}
		m.MediaType = ocispec.MediaTypeImageManifest
		m.ArtifactType = "application/vnd.example.signature"
		m.Subject = &subject
		smuggled := h.putManifest(t, "quarantine/app", "", ocispec.MediaTypeImageManifest, m)
		// The control: an SBOM, a non-runnable artifact.
		empty := h.pushBlob(t, "quarantine/app", []byte("{}"), ocispec.MediaTypeEmptyJSON)
		doc := h.pushBlob(t, "quarantine/app", []byte(`{"spdxVersion":"SPDX-2.3"}`), "application/spdx+json")
		sbom := h.putManifest(t, "quarantine/app", "", ocispec.MediaTypeImageManifest, ocispec.Manifest{
			Versioned: m.Versioned, MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/spdx+json",
			Config: empty, Layers: []ocispec.Descriptor{doc}, Subject: &subject})

		if st := waitVerdict(t, nil, h.srv, "quarantine/app@"+smuggled.Digest.String()); st.Verdict.State != gate.StateFail {
			t.Fatalf("the smuggled image's own verdict: %+v", st.Verdict)
		}
		if st := waitVerdict(t, nil, h.srv, "quarantine/app:1"); st.Verdict.State != gate.StatePass {
			t.Fatalf("quarantine/app:1: %+v", st.Verdict)
		}
		for i, target := range []string{"live/app:1", "live/app2:1"} {
			r := mustDrydock(t, nil, "promote", "quarantine/app:1", "--to", target, "--server", h.srv)
			if !strings.Contains(r.Stdout, "referrer "+smuggled.Digest.String()+" of "+subject.Digest.String()+" left behind: ") {
				t.Errorf("%s: promote does not say what it left behind:\n%s", target, r.Stdout)
			}
			repo, _, _ := strings.Cut(target, ":")
			code, body := h.raw(t, "GET", "/v2/"+repo+"/referrers/"+subject.Digest.String(), nil)
			if code != http.StatusOK || !strings.Contains(body, sbom.Digest.String()) || strings.Contains(body, smuggled.Digest.String()) {
				t.Errorf("%s: referrers in live: %d %s\n(promote said: %s)", target, code, body, r.Stdout)
			}
			left := h.auditOf(t, func(e audit.Entry) bool {
				return e.Actor == mallory && e.Action == audit.ActionPromotion && e.Outcome == audit.OutcomeRefused &&
					e.Digest == smuggled.Digest.String() && strings.Contains(string(e.Detail), subject.Digest.String())
			})
			if len(left) != i+1 {
				t.Errorf("%s: %d audited refusals of the smuggled referrer, want %d", target, len(left), i+1)
			}
		}
		if out, ok := h.crane(t, "digest", "--platform", "linux/amd64", host+"/live/app:1"); !ok || strings.TrimSpace(out) != subject.Digest.String() {
			t.Errorf("crane digest --platform linux/amd64 live/app:1 = %q (%v), want %s", out, ok, subject.Digest)
		}
		h.assertLiveClean(t, []digest.Digest{h.bad, smuggled.Digest}, "live/app:1", "live/app2:1")
	})

	// The gate's own writes: its scan reports are pushes by the gate,
	// never by "anonymous".
	for _, e := range h.auditOf(t, func(e audit.Entry) bool { return e.Action == audit.ActionPush }) {
		if e.Actor != mallory && e.Actor != "drydock:gate" {
			t.Errorf("push audited as %q: %+v", e.Actor, e)
		}
	}
}

// TestGatePermanentFailureNotRescanned is hole 5's gate side: a digest
// whose scan failed for a reason scanning again cannot mend (here an
// index that holds no image at all, which nothing judges) fails once,
// with the reason in its verdict, and is not scanned again: not at its
// next arrival, not after a kill -9 and restart, whose first sweep
// retries other failed scans.
func TestGatePermanentFailureNotRescanned(t *testing.T) {
	data := t.TempDir()
	cfg, _ := gateConfig(t, data, "")
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = writeConfig(t, strings.Replace(string(body), "gate: {", "gate: {sweepInterval: 200ms, ", 1))
	s := startServe(t, data, "--config", cfg)
	addUser(t, data, mallory, malloryPass, "pull:*", "push:*", "promote:*")
	h := &holes{s: s, data: data}
	att := h.attestation(t, "quarantine/empty")
	ix := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{att}}
	ix.SchemaVersion = 2
	ix.Manifests[0].Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	d := h.putManifest(t, "quarantine/empty", "1", ocispec.MediaTypeImageIndex, ix)
	st := waitVerdict(t, nil, s.URL(), "quarantine/empty:1")
	text, _ := json.Marshal(st.Verdict.Reasons)
	if st.Verdict.State != gate.StateFail || !strings.Contains(st.Scan.Error, "holds no image") || !strings.Contains(string(text), "holds no image") {
		t.Fatalf("verdict %+v", st)
	}
	scans := func() int {
		return len(h.auditOf(t, func(e audit.Entry) bool { return e.Action == audit.ActionScan && e.Digest == d.Digest.String() }))
	}
	jobs := func() int {
		return scanJobCount(t, data, d.Digest.String())
	}
	if scans() != 1 || jobs() != 1 {
		t.Fatalf("%d scans, %d jobs before the restart; want 1 and 1", scans(), jobs())
	}
	// Arrival again (another tag): not queued.
	h.putManifest(t, "quarantine/empty", "2", ocispec.MediaTypeImageIndex, ix)
	waitScanJobsFinal(t, data, d.Digest.String())
	s.Kill()
	s = startServe(t, data, "--config", cfg)
	h.s = s
	// Let several sweeps run (the first one retries failed scans that may
	// pass), then look.
	waitVerdict(t, nil, s.URL(), "quarantine/empty:1")
	for range 10 {
		if code, _ := h.raw(t, "GET", "/healthz", nil); code != http.StatusOK {
			t.Fatalf("healthz %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n, j := scans(), jobs(); n != 1 || j != 1 {
		t.Errorf("after arrival again and a kill -9 and restart: %d scans, %d scan jobs of the digest; want 1 and 1", n, j)
	}
	if v := mustDrydock(t, nil, "audit", "verify", "--data", data); !strings.HasPrefix(v.Stdout, "audit log intact: ") {
		t.Errorf("audit verify: %s", v.Stdout)
	}
	// An explicit rescan runs it again.
	mustDrydock(t, nil, "rescan", "quarantine/empty:1", "--server", s.URL())
	deadline := time.Now().Add(time.Minute)
	for scans() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("drydock rescan did not scan it again")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitScanJobsFinal waits until every scan job of digest has ended in the
// queue's database. River records a job's end a moment after its handler
// returns; a kill -9 before that leaves the job running, and the next
// start runs it again (a cut-off attempt), which is not what the tests
// around a kill mean to look at.
func waitScanJobsFinal(t *testing.T, data, digest string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "jobs", "jobs.db")+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = db.QueryRow(`SELECT count(*) FROM river_job WHERE kind = 'gate.scan' AND json_extract(args, '$.digest') = ? AND finalized_at IS NULL`, digest).Scan(&n)
		db.Close()
		if err != nil {
			t.Fatalf("reading scan jobs: %v", err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d scan jobs of %s still not ended after a minute", n, digest)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scanJobCount counts the scan jobs ever queued for digest (River keeps
// finished jobs for a day), reading the queue's database.
func scanJobCount(t *testing.T, data, digest string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "jobs", "jobs.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM river_job WHERE kind = 'gate.scan' AND json_extract(args, '$.digest') = ?`, digest).Scan(&n); err != nil {
		t.Fatalf("counting scan jobs: %v", err)
	}
	return n
}

// TestGateScanCutOffRunsAtStart: a scan cut off by kill -9 while it runs
// is not left pending until the stuck time-out (15 minutes by default,
// kept here): the restarted server queues it again at once, and the
// digest gets its verdict from the second attempt.
func TestGateScanCutOffRunsAtStart(t *testing.T) {
	requireTool(t, "skopeo")
	img := testimage.Require(t, testimage.BookwormNginx)
	data := t.TempDir()
	cfg, _ := gateConfig(t, data, "")
	s := startServe(t, data, "--config", cfg)
	runTool(t, "skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", img.OCIReference(), "docker://"+s.Addr+"/quarantine/app:1")
	d := img.Digest.String()
	var state string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Millisecond) {
		if state = jobState(t, data, d); state != "available" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the scan did not start in a minute")
		}
	}
	s.Kill()
	if state != "running" {
		t.Fatalf("the scan job was %s when seen leaving available; the kill must cut a running scan", state)
	}
	if got := jobState(t, data, d); got != "running" {
		t.Fatalf("the scan job is %s after the kill, want running", got)
	}
	start := time.Now()
	s = startServe(t, data, "--config", cfg)
	st := waitVerdict(t, nil, s.URL(), "quarantine/app:1")
	if st.Verdict.State != gate.StateFail || st.Scan.Error != "" {
		t.Fatalf("verdict after restart: %+v", st)
	}
	t.Logf("verdict %s after the restart (the stuck time-out is 15m)", time.Since(start).Round(time.Millisecond))
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "jobs", "jobs.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var attempt int
	var errs string
	if err := db.QueryRow(`SELECT attempt, json(errors) FROM river_job WHERE kind = 'gate.scan' AND json_extract(args, '$.digest') = ?`, d).Scan(&attempt, &errs); err != nil {
		t.Fatal(err)
	}
	if attempt != 2 || !strings.Contains(errs, "died") {
		t.Errorf("scan job attempt %d, errors %s; want the second attempt after a rescued one", attempt, errs)
	}
}
