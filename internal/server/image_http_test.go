package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/patch"
	"github.com/drydock-project/drydock/internal/testimage"
)

// pushImage pushes img as ref (as the test's writer) and returns its digest.
func (g *gateServer) pushImage(img v1.Image, ref string) string {
	g.t.Helper()
	r, err := name.ParseReference(g.host+"/"+ref, name.Insecure)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithContext(g.t.Context()), remote.WithAuth(&authn.Basic{Username: "writer", Password: "writer-password"})); err != nil {
		g.t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		g.t.Fatal(err)
	}
	return d.String()
}

// waitScannedAs is waitScanned with a user's credentials.
func (g *gateServer) waitScannedAs(ref, user, pass string) *gatekeeper.Status {
	g.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		req, _ := http.NewRequestWithContext(g.t.Context(), "GET", g.url+"/api/v1/verdict?ref="+url.QueryEscape(ref), nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			g.t.Fatal(err)
		}
		var st gatekeeper.Status
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil {
			g.t.Fatalf("verdict %s: %d %v", ref, resp.StatusCode, err)
		}
		if !st.Scan.ScannedAt.IsZero() || st.Scan.Error != "" {
			return &st
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s not scanned after 3 minutes: %+v", ref, st)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestImageRoutesOverHTTP: the image page's routes against a real server
// with the real scanner: a "patched" image whose lineage annotation names
// an older one (libc6 recorded at an old version) shows both, with the
// libc6 findings the patch removed; its platform, layers, packages and
// scan report; and 401, 403 and 400 naming the field.
func TestImageRoutesOverHTTP(t *testing.T) {
	ti := testimage.Require(t, testimage.Bookworm)
	// Anonymous may do nothing; writer pushes, reader pulls everywhere,
	// outsider only in live/.
	g := startGateServer(t, lenientPolicy, withConfig(func(c *config.Config) { c.Auth.Anonymous = nil }))
	st, err := auth.OpenStore(auth.DefaultPath(g.data))
	if err != nil {
		t.Fatal(err)
	}
	for user, grants := range map[string]auth.Grants{
		"writer":   {{Role: auth.RolePush, Namespace: auth.AllNamespaces}, {Role: auth.RolePull, Namespace: auth.AllNamespaces}},
		"reader":   {{Role: auth.RolePull, Namespace: auth.AllNamespaces}},
		"outsider": {{Role: auth.RolePull, Namespace: "live"}},
	} {
		if err := st.AddUser(context.Background(), user, user+"-password", grants); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	get := func(path, user, pass string, out any) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", g.url+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode == 200 {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("GET %s: %v: %s", path, err, b)
			}
		}
		return resp.StatusCode, string(b)
	}
	reader := func(path string, out any) int {
		t.Helper()
		code, body := get(path, "reader", "reader-password", out)
		if code != 200 {
			t.Logf("GET %s: %d %s", path, code, body)
		}
		return code
	}

	img, err := ti.Open()
	if err != nil {
		t.Fatal(err)
	}
	old, err := testimage.DowngradedTo(img, map[string]string{"libc6": "2.36-1"})
	if err != nil {
		t.Fatal(err)
	}
	parent := g.pushImage(old, "quarantine/lineage:1")
	child := mutate.Annotations(img, map[string]string{ocispec.AnnotationBaseImageDigest: parent,
		ocispec.AnnotationBaseImageName: "quarantine/lineage:1", patch.AnnotationPatched: "libc6"}).(v1.Image)
	cd := g.pushImage(child, "quarantine/lineage:1-1")
	if s := g.waitScannedAs("quarantine/lineage:1", "reader", "reader-password"); s.Scan.Error != "" {
		t.Fatalf("parent scan: %s", s.Scan.Error)
	}
	if s := g.waitScannedAs("quarantine/lineage:1-1", "reader", "reader-password"); s.Scan.Error != "" {
		t.Fatalf("child scan: %s", s.Scan.Error)
	}

	// The image: one platform, its layers as the manifest lists them.
	var det api.ImageDetail
	if code := reader("/api/v1/images/"+cd, &det); code != 200 {
		t.Fatalf("image: %d", code)
	}
	m, err := child.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if det.Index || len(det.Platforms) != 1 || det.Platforms[0].Digest != cd || !det.Platforms[0].Scanned ||
		len(det.Platforms[0].Layers) != len(m.Layers) || det.Platforms[0].Layers[0].Digest != m.Layers[0].Digest.String() ||
		det.Platforms[0].Layers[0].Size != m.Layers[0].Size || det.Platforms[0].Config.Digest != m.Config.Digest.String() {
		t.Fatalf("image detail %+v, manifest %+v", det, m)
	}

	// The packages, from the stored inventory, filtered and paged.
	var pk api.PackagesResponse
	if code := reader("/api/v1/images/"+cd+"/packages?name=LIBC6", &pk); code != 200 || pk.Total < 1 || pk.Packages[0].Name != "libc6" ||
		pk.Packages[0].Version == "2.36-1" || pk.PlatformDigest != cd {
		t.Fatalf("packages of the child: %d %+v", code, pk)
	}
	var all api.PackagesResponse
	if code := reader("/api/v1/images/"+cd+"/packages?limit=5&page=2", &all); code != 200 || len(all.Packages) != 5 ||
		all.Total != det.Platforms[0].Packages || all.Page != 2 {
		t.Fatalf("page 2 of the packages: %d %+v (image lists %d)", code, all, det.Platforms[0].Packages)
	}
	var ppk api.PackagesResponse
	if code := reader("/api/v1/images/"+parent+"/packages?name=libc6", &ppk); code != 200 || ppk.Total < 1 || ppk.Packages[0].Version != "2.36-1" {
		t.Fatalf("packages of the parent: %d %+v", code, ppk)
	}

	// The lineage: parent, then the child, which removed libc6 findings
	// and only those.
	var lin api.LineageResponse
	if code := reader("/api/v1/images/"+cd+"/lineage", &lin); code != 200 || len(lin.Steps) != 2 || lin.Steps[0].Digest != parent ||
		lin.Steps[1].Digest != cd || lin.Steps[1].BaseName != "quarantine/lineage:1" || lin.Steps[1].Patched != "libc6" || lin.Note != "" {
		t.Fatalf("lineage: %d %+v", code, lin)
	}
	if len(lin.Steps[1].Removed) == 0 || len(lin.Steps[1].Added) != 0 || lin.Steps[0].Findings-lin.Steps[1].Findings != len(lin.Steps[1].Removed) {
		t.Fatalf("the patch removed %d and added %d findings (%d → %d)", len(lin.Steps[1].Removed), len(lin.Steps[1].Added),
			lin.Steps[0].Findings, lin.Steps[1].Findings)
	}
	for _, r := range lin.Steps[1].Removed {
		if r.PkgName != "libc6" || r.Version != "2.36-1" {
			t.Errorf("removed %+v: not of libc6 2.36-1", r)
		}
	}
	if len(lin.Patches) != 0 {
		t.Errorf("the patch has patches: %+v", lin.Patches)
	}
	// The original's lineage lists its patch, found by the annotation,
	// with the same difference.
	var root api.LineageResponse
	if code := reader("/api/v1/images/"+parent+"/lineage", &root); code != 200 || len(root.Steps) != 1 || root.Steps[0].Digest != parent ||
		len(root.Patches) != 1 || root.Patches[0].Digest != cd || !slices.Equal(root.Patches[0].Tags, []string{"1-1"}) ||
		root.Patches[0].Patched != "libc6" || len(root.Patches[0].Removed) != len(lin.Steps[1].Removed) || len(root.Patches[0].Added) != 0 ||
		root.Patches[0].Findings != lin.Steps[1].Findings {
		t.Fatalf("lineage of the original: %d %+v", code, root)
	}

	// The referrers: the gate's scan report, grouped as one.
	deadline := time.Now().Add(time.Minute)
	var report string
	for {
		var refs api.ReferrersResponse
		if code := reader("/api/v1/images/"+cd+"/referrers", &refs); code != 200 {
			t.Fatalf("referrers: %d", code)
		}
		if len(refs.Groups) > 0 {
			if refs.Groups[0].Class != imgref.ClassScanReport || refs.Repository != "quarantine/lineage" ||
				!strings.HasPrefix(refs.Groups[0].Referrers[0].Reference, "quarantine/lineage@sha256:") {
				t.Fatalf("referrers %+v", refs)
			}
			report = refs.Groups[0].Referrers[0].Digest
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no scan report among the referrers after a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The referrer's link: its manifest, classed.
	var man api.ManifestResponse
	manPath := "/api/v1/manifests/" + report + "?repository=quarantine/lineage"
	if code := reader(manPath, &man); code != 200 || man.Class != imgref.ClassScanReport || man.Digest != report || len(man.Manifest) == 0 {
		t.Fatalf("manifest of the report: %d %+v", code, man)
	}
	if code, body := get(manPath, "outsider", "outsider-password", nil); code != 403 {
		t.Errorf("GET %s without pull: %d %s", manPath, code, body)
	}
	if code, body := get(manPath, "", "", nil); code != 401 {
		t.Errorf("GET %s without credentials: %d %s", manPath, code, body)
	}
	if code, body := get("/api/v1/manifests/"+report, "reader", "reader-password", nil); code != 400 || !strings.Contains(body, "repository:") {
		t.Errorf("GET a manifest without repository: %d %s", code, body)
	}

	// 401 for bad credentials, 403 for who may not pull, 400 naming the
	// field.
	for _, p := range []string{"", "/packages", "/lineage", "/referrers"} {
		path := "/api/v1/images/" + cd + p
		if code, body := get(path, "reader", "wrong", nil); code != 401 {
			t.Errorf("GET %s with a wrong password: %d %s", path, code, body)
		}
		if code, body := get(path, "", "", nil); code != 401 {
			t.Errorf("GET %s without credentials: %d %s", path, code, body)
		}
		if code, body := get(path, "outsider", "outsider-password", nil); code != 403 || !strings.Contains(body, "DENIED") {
			t.Errorf("GET %s without pull: %d %s", path, code, body)
		}
		bad := "/api/v1/images/sha256:nothex" + p
		if code, body := get(bad, "reader", "reader-password", nil); code != 400 || !strings.Contains(body, "digest:") {
			t.Errorf("GET %s: %d %s, want 400 naming digest", bad, code, body)
		}
	}
	for path, field := range map[string]string{
		"/api/v1/images/" + cd + "/packages?limit=0":                          "limit:",
		"/api/v1/images/" + cd + "/packages?page=x":                           "page:",
		"/api/v1/images/" + cd + "/packages?platform=linux/s390x":             "platform:",
		"/api/v1/images/" + cd + "/packages?name=" + strings.Repeat("a", 300): "name:",
		"/api/v1/images/" + cd + "/referrers?repository=UPPER/case":           "repository:",
	} {
		if code, body := get(path, "reader", "reader-password", nil); code != 400 || !strings.Contains(body, field) {
			t.Errorf("GET %s: %d %s, want 400 naming %s", path, code, body, field)
		}
	}
}
