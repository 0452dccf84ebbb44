package testimage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// distroless assembles a distroless-style root filesystem: the .debs of
// s.Include from the suite's main component, unpacked without maintainer
// scripts, each recorded as /var/lib/dpkg/status.d/<pkg> (+ .md5sums) the way
// Google's distroless images do — no /var/lib/dpkg/status, no shell, no apt.
func distroless(ctx context.Context, o *options, s Spec, rootfs string) (string, error) {
	debs, err := resolveDebs(ctx, o, s.Suite, s.Arch, s.Include)
	if err != nil {
		return "", err
	}
	statusD := filepath.Join(rootfs, "var/lib/dpkg/status.d")
	if err := os.MkdirAll(statusD, 0o755); err != nil {
		return "", err
	}
	var names []string
	for _, d := range debs {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "--extract", d.path, rootfs).CombinedOutput(); err != nil {
			return "", fmt.Errorf("extracting %s: %w: %s", d.path, err, out)
		}
		control, err := exec.CommandContext(ctx, "dpkg-deb", "--info", d.path, "control").Output()
		if err != nil {
			return "", fmt.Errorf("reading control of %s: %w", d.path, err)
		}
		ps, err := parseControl(bytes.NewReader(control))
		if err != nil || len(ps) != 1 {
			return "", fmt.Errorf("parsing control of %s: %v", d.path, err)
		}
		var buf bytes.Buffer
		if err := formatParagraph(&buf, withStatus(ps[0])); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(statusD, d.name), buf.Bytes(), 0o644); err != nil {
			return "", err
		}
		if sums, err := exec.CommandContext(ctx, "dpkg-deb", "--info", d.path, "md5sums").Output(); err == nil && len(sums) > 0 {
			if err := os.WriteFile(filepath.Join(statusD, d.name+".md5sums"), sums, 0o644); err != nil {
				return "", err
			}
		}
		names = append(names, d.name+"="+d.version)
	}
	if err := distrolessFiles(rootfs); err != nil {
		return "", fmt.Errorf("writing distroless files: %w", err)
	}
	return "distroless: dpkg-deb --extract " + strings.Join(names, " "), nil
}

// withStatus inserts "Status: install ok installed" after the Package field.
func withStatus(p Paragraph) Paragraph {
	out := Paragraph{Values: map[string]string{}}
	for _, k := range p.Fields {
		if strings.EqualFold(k, "Status") {
			continue
		}
		out.Fields = append(out.Fields, k)
		out.Values[k] = p.Values[k]
		if strings.EqualFold(k, "Package") {
			out.Fields = append(out.Fields, "Status")
			out.Values["Status"] = "install ok installed"
		}
	}
	return out
}

type debFile struct {
	name, version, path string
}

// resolveDebs finds each package in the suite's main Packages index (its own
// architecture or "all", the highest version) and downloads its .deb into
// the cache, verified by SHA-256. No dependency closure: a distroless image
// is exactly its package list.
func resolveDebs(ctx context.Context, o *options, suite, arch string, pkgs []string) ([]debFile, error) {
	idx, err := fetchPackages(ctx, o, o.mirror.URI, suite, "main", arch)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, p := range pkgs {
		want[p] = true
	}
	found := map[string]Paragraph{}
	err = eachIndexParagraph(idx, func(p Paragraph) error {
		name, a := p.Get("Package"), p.Get("Architecture")
		if !want[name] || (a != arch && a != "all") {
			return nil
		}
		if prev, ok := found[name]; ok && compareVersions(prev.Get("Version"), p.Get("Version")) >= 0 {
			return nil
		}
		found[name] = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []debFile
	for _, name := range sortedKeys(want) {
		p, ok := found[name]
		if !ok {
			return nil, fmt.Errorf("package %q not in %s %s/main %s", name, o.mirror.URI, suite, arch)
		}
		sum, file := p.Get("SHA256"), p.Get("Filename")
		if sum == "" || file == "" || strings.Contains(file, "..") {
			return nil, fmt.Errorf("package %q: index entry without SHA256 or Filename", name)
		}
		size := int64(-1)
		fmt.Sscan(p.Get("Size"), &size)
		dst := filepath.Join(o.root(), "apt", "debs", sum+".deb")
		if err := download(ctx, o.mirror.URI+"/"+file, dst, sum, size); err != nil {
			return nil, err
		}
		out = append(out, debFile{name: name, version: p.Get("Version"), path: dst})
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// distrolessFiles writes what distroless adds to its packages: users and
// groups (root, nobody, nonroot 65532), home and tmp directories, and the CA
// bundle update-ca-certificates would have generated.
func distrolessFiles(rootfs string) error {
	files := []struct {
		name    string
		content string
		mode    os.FileMode
	}{
		{"etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n", 0o644},
		{"etc/group", "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n", 0o644},
		{"etc/nsswitch.conf", "passwd:         files\ngroup:          files\nshadow:         files\nhosts:          files dns\nnetworks:       files\nprotocols:      db files\nservices:       db files\nethers:         db files\nrpc:            db files\n", 0o644},
	}
	for _, f := range files {
		p := filepath.Join(rootfs, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(f.content), f.mode); err != nil {
			return err
		}
	}
	dirs := []struct {
		name     string
		mode     os.FileMode
		uid, gid int
	}{
		{"root", 0o700, 0, 0}, {"home/nonroot", 0o700, 65532, 65532}, {"tmp", 0o777 | os.ModeSticky, 0, 0},
		{"etc/ssl/certs", 0o755, 0, 0},
	}
	for _, d := range dirs {
		p := filepath.Join(rootfs, d.name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
		if err := os.Lchown(p, d.uid, d.gid); err != nil {
			return err
		}
	}
	certs, _ := filepath.Glob(filepath.Join(rootfs, "usr/share/ca-certificates/mozilla/*.crt"))
	if len(certs) == 0 {
		return nil
	}
	sort.Strings(certs)
	var bundle bytes.Buffer
	for _, c := range certs {
		b, err := os.ReadFile(c)
		if err != nil {
			return err
		}
		bundle.Write(bytes.TrimRight(b, "\n"))
		bundle.WriteByte('\n')
	}
	return os.WriteFile(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt"), bundle.Bytes(), 0o644)
}
