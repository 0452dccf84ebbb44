package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/testimage"
)

// TestStandardClients pushes and pulls a real Debian image with skopeo,
// crane and podman, unchanged, against a real drydock serve.
func TestStandardClients(t *testing.T) {
	requireTool(t, "skopeo")
	img := testimage.Require(t, testimage.Bookworm)
	s := startServe(t, "")
	tmp := t.TempDir()

	t.Run("skopeo", func(t *testing.T) {
		runTool(t, "skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
			img.OCIReference(), "docker://"+s.Addr+"/quarantine/skopeo:1")
		if d := digestOf(t, s, "quarantine/skopeo:1"); d != img.Digest {
			t.Errorf("skopeo push: digest %s, want %s", d, img.Digest)
		}
		out := filepath.Join(tmp, "skopeo-out")
		runTool(t, "skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
			"docker://"+s.Addr+"/quarantine/skopeo:1", "oci:"+out+":1")
		sameBlobs(t, filepath.Join(img.LayoutDir, "blobs"), filepath.Join(out, "blobs"))
	})

	t.Run("crane", func(t *testing.T) {
		c := crane(t)
		archive, err := img.DockerArchive(t.Context(), tmp, "bookworm", "crane")
		if err != nil {
			t.Fatal(err)
		}
		runTool(t, c, "push", "--insecure", archive, s.Addr+"/quarantine/crane:tarball")
		runTool(t, c, "copy", "--insecure", s.Addr+"/quarantine/skopeo:1", s.Addr+"/quarantine/crane:copied")
		if d := digestOf(t, s, "quarantine/crane:copied"); d != img.Digest {
			t.Errorf("crane copy: digest %s, want %s", d, img.Digest)
		}
		out := filepath.Join(tmp, "crane-out")
		runTool(t, c, "pull", "--insecure", "--format", "oci", s.Addr+"/quarantine/crane:copied", out)
		sameBlobs(t, filepath.Join(img.LayoutDir, "blobs"), filepath.Join(out, "blobs"))
		tags := runTool(t, c, "ls", "--insecure", s.Addr+"/quarantine/crane")
		if strings.Fields(tags)[0] != "copied" || !strings.Contains(tags, "tarball") {
			t.Errorf("crane ls: %q", tags)
		}
		runTool(t, c, "delete", "--insecure", s.Addr+"/quarantine/crane@"+digestOf(t, s, "quarantine/crane:tarball").String())
	})

	t.Run("podman", func(t *testing.T) {
		requireTool(t, "podman", "runc")
		podman := func(args ...string) string {
			base := []string{"--runtime", "/usr/sbin/runc", "--cgroup-manager", "cgroupfs"}
			return runTool(t, "podman", append(base, args...)...)
		}
		local, err := img.LoadIntoContainersStorage(t.Context(), "drydock-e2e-bookworm", "push")
		if err != nil {
			t.Fatal(err)
		}
		remoteRef := s.Addr + "/quarantine/podman:1"
		podman("push", "--quiet", "--tls-verify=false", local, remoteRef)
		podman("rmi", "--force", local)
		podman("pull", "--quiet", "--tls-verify=false", remoteRef)
		defer podman("rmi", "--force", remoteRef)
		out := podman("run", "--rm", "--network=none", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1000:1000",
			remoteRef, "cat", "/etc/os-release")
		if !strings.Contains(out, "bookworm") {
			t.Errorf("image pulled by podman does not run as bookworm:\n%s", out)
		}
	})
}
