package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/drydock-project/drydock/internal/testimage"
)

// TestImportLocalForms imports a real bookworm image from oci:, oci-archive:
// and docker-archive:, checks the digests, and pulls it back with skopeo and
// crane to compare bytes.
func TestImportLocalForms(t *testing.T) {
	requireTool(t, "skopeo")
	img := testimage.Require(t, testimage.Bookworm)
	s := startServe(t, "")
	tmp := t.TempDir()
	server := []string{"--server", s.URL()}

	// oci:DIR:REF
	mustDrydock(t, nil, append([]string{"import", img.OCIReference(), "--as", "bookworm:oci"}, server...)...)
	if d := digestOf(t, s, "quarantine/bookworm:oci"); d != img.Digest {
		t.Errorf("oci: digest %s, want %s", d, img.Digest)
	}

	// oci-archive:FILE:REF
	archive, err := img.OCIArchive(t.Context(), tmp, "bookworm")
	if err != nil {
		t.Fatal(err)
	}
	mustDrydock(t, nil, append([]string{"import", "oci-archive:" + archive + ":bookworm", "--as", "bookworm:ociarchive"}, server...)...)
	if d := digestOf(t, s, "quarantine/bookworm:ociarchive"); d != img.Digest {
		t.Errorf("oci-archive: digest %s, want %s", d, img.Digest)
	}

	// docker-archive:FILE: the digest must be the one skopeo computes when
	// it copies the same archive to a registry.
	docker, err := img.DockerArchive(t.Context(), tmp, "bookworm", "12")
	if err != nil {
		t.Fatal(err)
	}
	mustDrydock(t, nil, append([]string{"import", "docker-archive:" + docker, "--as", "bookworm:dockerarchive"}, server...)...)
	runTool(t, "skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
		"docker-archive:"+docker, "docker://"+s.Addr+"/skopeo/bookworm:dockerarchive")
	want := digestOf(t, s, "skopeo/bookworm:dockerarchive")
	if d := digestOf(t, s, "quarantine/bookworm:dockerarchive"); d != want {
		t.Errorf("docker-archive: drydock digest %s, skopeo digest %s", d, want)
	}

	// Pull back with crane and skopeo: the same bytes as the source layout.
	srcManifest := readBlob(t, img.LayoutDir, img.Digest)
	out := filepath.Join(tmp, "crane-pull")
	runTool(t, crane(t), "pull", "--insecure", "--format", "oci", s.Addr+"/quarantine/bookworm:oci", out)
	sameBlobs(t, filepath.Join(img.LayoutDir, "blobs"), filepath.Join(out, "blobs"))
	if got := runTool(t, crane(t), "manifest", "--insecure", s.Addr+"/quarantine/bookworm:ociarchive"); got != string(srcManifest) {
		t.Errorf("crane manifest differs from the source manifest")
	}
	dir := filepath.Join(tmp, "skopeo-dir")
	runTool(t, "skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
		"docker://"+s.Addr+"/quarantine/bookworm:oci", "dir:"+dir)
	if got, _ := os.ReadFile(filepath.Join(dir, "manifest.json")); string(got) != string(srcManifest) {
		t.Errorf("skopeo manifest differs from the source manifest")
	}
	var m v1.Manifest
	if err := json.Unmarshal(srcManifest, &m); err != nil {
		t.Fatal(err)
	}
	for _, desc := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		got, err := os.ReadFile(filepath.Join(dir, desc.Digest.Hex))
		if err != nil {
			t.Fatalf("skopeo did not pull %s: %v", desc.Digest, err)
		}
		if sum := sha256.Sum256(got); hex.EncodeToString(sum[:]) != desc.Digest.Hex {
			t.Errorf("skopeo pulled different bytes for %s", desc.Digest)
		}
	}
}

func readBlob(t testing.TB, layoutDir string, d v1.Hash) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(layoutDir, "blobs", d.Algorithm, d.Hex))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeHtpasswd writes an htpasswd file with one user.
func writeHtpasswd(t testing.TB, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(user+":"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// dockerConfig writes a docker config.json with credentials for host and
// returns its directory (for DOCKER_CONFIG).
func dockerConfig(t testing.TB, host, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	body := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestImportFromRegistry uses a second drydock, with basic auth, as the
// source registry of a real two-platform index.
func TestImportFromRegistry(t *testing.T) {
	requireTool(t, "skopeo")
	idx := testimage.RequireIndex(t, "trixie-multiarch", testimage.MultiArchSpecs)
	src := startServe(t, "", "--config", writeConfig(t, "auth: {htpasswd: "+writeHtpasswd(t, "alice", "s3cret")+"}\n"))
	dst := startServe(t, "")
	runTool(t, "skopeo", "--insecure-policy", "copy", "--quiet", "--all", "--dest-tls-verify=false",
		"--dest-creds", "alice:s3cret", idx.OCIReference(), "docker://"+src.Addr+"/library/trixie:13")

	good := []string{"DOCKER_CONFIG=" + dockerConfig(t, src.Addr, "alice", "s3cret")}
	// skopeo re-serializes an index it pushes, so the source registry's
	// digest, not the layout's, is the one import must keep.
	srcDigest := digestOf(t, src, "library/trixie:13", remote.WithAuth(&authn.Basic{Username: "alice", Password: "s3cret"}))
	mustDrydock(t, good, "import", src.Addr+"/library/trixie:13", "--as", "trixie:13", "--server", dst.URL())
	if d := digestOf(t, dst, "quarantine/trixie:13"); d != srcDigest {
		t.Errorf("index digest %s, want the source's %s", d, srcDigest)
	}
	got, err := remote.Index(ref(t, dst.Addr+"/quarantine/trixie:13"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, m := range im.Manifests {
		plats = append(plats, m.Platform.String())
		if _, err := remote.Image(ref(t, dst.Addr+"/quarantine/trixie@"+m.Digest.String())); err != nil {
			t.Errorf("platform %s not pullable: %v", m.Platform, err)
		}
	}
	sort.Strings(plats)
	if len(plats) != 2 || plats[0] != "linux/amd64" || !strings.HasPrefix(plats[1], "linux/arm64") {
		t.Errorf("platforms %v, want linux/amd64 and linux/arm64", plats)
	}

	// --platform picks one child and keeps its digest.
	mustDrydock(t, good, "import", src.Addr+"/library/trixie:13", "--as", "trixie-arm:13", "--platform", "linux/arm64", "--server", dst.URL())
	var arm v1.Hash
	for _, im := range idx.Images {
		if im.Platform.Architecture == "arm64" {
			arm = im.Digest
		}
	}
	if d := digestOf(t, dst, "quarantine/trixie-arm:13"); d != arm {
		t.Errorf("--platform linux/arm64: digest %s, want %s", d, arm)
	}

	// Wrong credentials: a clear error and nothing in the destination.
	bad := []string{"DOCKER_CONFIG=" + dockerConfig(t, src.Addr, "alice", "wrong")}
	r := drydock(t, bad, "import", src.Addr+"/library/trixie:13", "--as", "wrongcreds:1", "--server", dst.URL())
	if r.Code == 0 || !strings.Contains(strings.ToLower(r.Stderr), "auth") {
		t.Errorf("wrong credentials: exit %d, stderr %q", r.Code, r.Stderr)
	}
	for _, repo := range catalog(t, dst) {
		if strings.Contains(repo, "wrongcreds") {
			t.Errorf("failed import left %s behind", repo)
		}
	}
}
