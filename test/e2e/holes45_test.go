package e2e

import (
	"archive/tar"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/testimage"
)

// layerTar writes a layer tarball of the given entries: "name" with a
// body, "name/" a directory, "name" -> "->target" a symbolic link.
func layerTar(t *testing.T, ents ...[2]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "layer.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, e := range ents {
		h := &tar.Header{Name: e[0], Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e[1]))}
		switch {
		case strings.HasSuffix(e[0], "/"):
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		case strings.HasPrefix(e[1], "->"):
			h.Typeflag, h.Size, h.Linkname = tar.TypeSymlink, 0, e[1][2:]
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e[1]))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// TestGateHoles45 is #12's acceptance for holes 4 and 5, as mallory (pull,
// push and promote on every namespace, not admin) with crane and raw HTTP:
// the failing bullseye image with its dpkg status whited out, with hostile
// layers, with a config whose diff_id does not match, and the 160,000-
// package image each fail with the kind and the entry, digest or limit
// that made it so; none is promotable or pullable from live/; the huge one
// is not scanned again after a kill -9 and restart; the audit log
// verifies.
func TestGateHoles45(t *testing.T) {
	h := startHoles(t)
	host := h.s.Addr
	type attack struct {
		name, ref string
		kind      string // the refusal kind the scan error names
		has       string
		digest    digest.Digest
	}
	var attacks []*attack
	appendLayer := func(name, kind, has string, ents ...[2]string) {
		ref := "quarantine/" + name + ":1"
		if out, ok := h.crane(t, "append", "-b", host+"/quarantine/bad:1", "-f", layerTar(t, ents...), "-t", host+"/"+ref); !ok {
			t.Fatalf("crane append %s: %s", name, out)
		}
		attacks = append(attacks, &attack{name: name, ref: ref, kind: kind, has: has})
	}
	// Hole 4: the package database hidden, hostile entries.
	appendLayer("whiteout", "unverifiable", "var/lib/dpkg/status", [2]string{"var/lib/dpkg/.wh.status", ""})
	appendLayer("opaque", "unverifiable", "an opaque whiteout of var/lib/dpkg",
		[2]string{"var/lib/dpkg/", ""}, [2]string{"var/lib/dpkg/.wh..wh..opq", ""}, [2]string{"var/lib/dpkg/info/", ""})
	appendLayer("emptied", "unverifiable", "var/lib/dpkg/status lists no installed package", [2]string{"var/lib/dpkg/status", ""})
	appendLayer("dotdot", "hostile", `entry "../../etc/cron.d/x"`, [2]string{"../../etc/cron.d/x", "* * * * * root id\n"})
	appendLayer("symlink-out", "hostile", `symbolic link target "../../../../../host"`, [2]string{"usr/lib/escape", "->../../../../../host"})

	// Hole 4: a config whose diff_id does not match its layer, by raw HTTP.
	m := rawManifest(t, host, "quarantine/bad", "1", mallory, malloryPass)
	var man ocispec.Manifest
	if err := json.Unmarshal(m, &man); err != nil {
		t.Fatal(err)
	}
	code, cfgBody := h.raw(t, "GET", "/v2/quarantine/bad/blobs/"+man.Config.Digest.String(), nil)
	if code != http.StatusOK {
		t.Fatalf("config blob: %d", code)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(cfgBody), &cfg); err != nil {
		t.Fatal(err)
	}
	wrong := "sha256:" + strings.Repeat("ab", 32)
	cfg["rootfs"].(map[string]any)["diff_ids"].([]any)[0] = wrong
	cb, _ := json.Marshal(cfg)
	man.Config = h.pushBlob(t, "quarantine/diffid", cb, man.Config.MediaType)
	for _, l := range man.Layers {
		if code, b := h.raw(t, "POST", "/v2/quarantine/diffid/blobs/uploads/?mount="+l.Digest.String()+"&from=quarantine/bad", nil); code != http.StatusCreated {
			t.Fatalf("mount %s: %d %s", l.Digest, code, b)
		}
	}
	mt := man.MediaType
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	h.putManifest(t, "quarantine/diffid", "1", mt, man)
	attacks = append(attacks, &attack{name: "diffid", ref: "quarantine/diffid:1", kind: "corrupt",
		has: "rootfs.diff_ids says " + wrong + ""})

	// Hole 5: a <1 MB layer holding a 50 MB status of 160,000 packages.
	img, _, err := testimage.HugeDpkgStatusImage(t.TempDir(), 160_000)
	if err != nil {
		t.Fatal(err)
	}
	hugeRef, err := name.ParseReference(host+"/quarantine/huge:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(hugeRef, img, remote.WithAuth(&authn.Basic{Username: mallory, Password: malloryPass}), remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	attacks = append(attacks, &attack{name: "huge", ref: "quarantine/huge:1", kind: "over-limit",
		has: "over the package limit: more than 20000 installed packages (reading var/lib/dpkg/status), limit 20000"})

	var failing []digest.Digest
	var live []string
	for _, a := range attacks {
		st := waitVerdict(t, nil, h.srv, a.ref)
		a.digest = digest.Digest(st.Digest)
		failing = append(failing, a.digest)
		reasons, _ := json.Marshal(st.Verdict.Reasons)
		if st.Verdict.State != gate.StateFail || !strings.Contains(st.Scan.Error, a.kind+" image: ") || !strings.Contains(st.Scan.Error, a.has) {
			t.Errorf("%s: verdict %s, scan error %q; want fail as %s naming %q", a.name, st.Verdict.State, st.Scan.Error, a.kind, a.has)
		} else if !strings.Contains(string(reasons), a.kind+" image") {
			t.Errorf("%s: the verdict's reasons do not name the kind: %s", a.name, reasons)
		}
		if r := drydock(t, nil, "promote", a.ref, "--server", h.srv); r.Code == 0 {
			t.Errorf("promote %s succeeded", a.ref)
		}
		live = append(live, "live/"+a.name+":1")
	}
	h.assertLiveClean(t, failing, live...)

	// The huge one is judged once: not again on arrival, nor after a
	// kill -9 and restart.
	huge := attacks[len(attacks)-1].digest.String()
	scans := func() int {
		return len(h.auditOf(t, func(e audit.Entry) bool { return e.Action == audit.ActionScan && e.Digest == huge }))
	}
	if n, j := scans(), scanJobCount(t, h.data, huge); n != 1 || j != 1 {
		t.Fatalf("before the restart: %d scans, %d jobs of the huge image; want 1 and 1", n, j)
	}
	waitScanJobsFinal(t, h.data, huge)
	h.s.Kill()
	h.s = startServeEnv(t, h.data, nil, "--config", writeConfig(t, "gate: {sweepInterval: 200ms}\n"))
	waitVerdict(t, nil, "http://"+mallory+":"+malloryPass+"@"+h.s.Addr, "quarantine/huge:1")
	time.Sleep(2 * time.Second) // several sweeps
	if n, j := scans(), scanJobCount(t, h.data, huge); n != 1 || j != 1 {
		t.Errorf("after a kill -9 and restart: %d scans, %d jobs of the huge image; want 1 and 1", n, j)
	}
	if v := mustDrydock(t, nil, "audit", "verify", "--data", h.data); !strings.HasPrefix(v.Stdout, "audit log intact: ") {
		t.Errorf("audit verify: %s", v.Stdout)
	}
}
