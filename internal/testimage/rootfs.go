package testimage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// buildImage makes the root filesystem of s in tmp/rootfs, turns it into an
// image and writes the layout tmp/oci.
func buildImage(ctx context.Context, o *options, s Spec, key, tmp string) (meta, error) {
	start := time.Now()
	rootfs := filepath.Join(tmp, "rootfs")
	var createdBy string
	var err error
	switch s.Kind {
	case Debootstrap:
		createdBy, err = debootstrap(ctx, o, s, rootfs)
	case Chrootless:
		createdBy, err = chrootless(ctx, o, s, rootfs)
	case Distroless:
		createdBy, err = distroless(ctx, o, s, rootfs)
	}
	if err != nil {
		return meta{}, err
	}
	if s.Kind != Distroless {
		if err := finishDebian(o, s, rootfs); err != nil {
			return meta{}, fmt.Errorf("finishing root filesystem: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return meta{}, err
	}
	tarPath := filepath.Join(tmp, "layer.tar.gz")
	if err := writeLayer(rootfs, tarPath, o.epoch); err != nil {
		return meta{}, err
	}
	removeTree(rootfs)
	img, size, err := assemble(s, tarPath, createdBy, o.epoch)
	if err != nil {
		return meta{}, err
	}
	if err := writeLayout(filepath.Join(tmp, "oci"), img, s.Name); err != nil {
		return meta{}, err
	}
	os.Remove(tarPath)
	d, err := img.Digest()
	if err != nil {
		return meta{}, err
	}
	return meta{Key: key, Spec: &s, Digest: d.String(), Size: size, BuildTime: time.Since(start), Mirror: *o.mirror}, nil
}

// debootstrap runs `debootstrap --variant=minbase` of the main suite.
func debootstrap(ctx context.Context, o *options, s Spec, rootfs string) (string, error) {
	args := []string{"--variant=minbase", "--arch=" + s.Arch}
	if legacySources(s.Suite) {
		// Official images of these releases are not merged-usr.
		args = append(args, "--no-merged-usr")
	}
	if len(s.Include) > 0 {
		args = append(args, "--include="+strings.Join(s.Include, ","))
	}
	args = append(args, s.Suite, rootfs, o.mirror.URI)
	if err := run(ctx, o, "debootstrap", args...); err != nil {
		return "", err
	}
	return "debootstrap " + strings.Join(args[:len(args)-2], " ") + " ROOTFS MIRROR", nil
}

// chrootless runs mmdebstrap in chrootless mode: maintainer scripts run with
// the host's tools against DPKG_ROOT, so any architecture builds without
// emulation.
//
// A maintainer script that ignores DPKG_ROOT writes to the host instead of
// the image (ca-certificates' postinst rewrites /etc/ca-certificates.conf and
// the host's CA bundle). So mmdebstrap runs in a private mount namespace
// where the host's /etc and /usr are read-only: such a script fails the
// build instead of damaging the machine. Keep chrootless package sets to
// DPKG_ROOT-aware packages (the essential set and apt).
func chrootless(ctx context.Context, o *options, s Spec, rootfs string) (string, error) {
	args := []string{"--mode=chrootless", "--variant=essential", "--architectures=" + s.Arch}
	if len(s.Include) > 0 {
		args = append(args, "--include="+strings.Join(s.Include, ","))
	}
	args = append(args, s.Suite, rootfs, o.mirror.URI)
	protectedDirs := []string{"/etc", "/usr"} // read-only to the build
	abs, err := filepath.Abs(rootfs)
	if err != nil {
		return "", err
	}
	for _, d := range protectedDirs {
		if abs == d || strings.HasPrefix(abs, d+"/") {
			return "", fmt.Errorf("chrootless build in %q: the cache must not be under %s", abs, d)
		}
	}
	script := "set -e\n"
	for _, d := range protectedDirs {
		script += fmt.Sprintf("mount --bind %[1]s %[1]s\nmount -o remount,bind,ro %[1]s\n", d)
	}
	script += "exec mmdebstrap \"$@\"\n"
	wrapped := append([]string{"--mount", "--propagation", "private", "--", "sh", "-c", script, "mmdebstrap"}, args...)
	if err := run(ctx, o, "unshare", wrapped...); err != nil {
		return "", err
	}
	return "mmdebstrap " + strings.Join(args[:len(args)-2], " ") + " ROOTFS MIRROR", nil
}

// run runs a build tool with SOURCE_DATE_EPOCH set, its output going to the
// log and, on failure, into the error.
func run(ctx context.Context, o *options, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	var tail tailBuffer
	cmd.Stdout = io.MultiWriter(o.log, &tail)
	cmd.Stderr = cmd.Stdout
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(o.epoch.Unix(), 10),
		"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C.UTF-8")
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running %s %s: %w\n%s", name, strings.Join(args, " "), err, tail.String())
	}
	return nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// finishDebian gives a bootstrapped root filesystem what an official image
// has: its own apt sources (main, -updates, -security), Docker's apt and dpkg
// tweaks, and no caches, logs or host leftovers.
func finishDebian(o *options, s Spec, rootfs string) error {
	if err := writeSources(o.mirror, s.Suite, rootfs); err != nil {
		return err
	}
	files := map[string]string{
		// As debuerreotype's minimizing config does for official images.
		"usr/sbin/policy-rc.d":                          "#!/bin/sh\nexit 101\n",
		"etc/apt/apt.conf.d/docker-clean":               "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };\nAPT::Update::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };\nDir::Cache::pkgcache \"\";\nDir::Cache::srcpkgcache \"\";\n",
		"etc/apt/apt.conf.d/docker-autoremove-suggests": "Apt::AutoRemove::SuggestsImportant \"false\";\n",
		"etc/apt/apt.conf.d/docker-no-languages":        "Acquire::Languages \"none\";\n",
		"etc/apt/apt.conf.d/docker-gzip-indexes":        "Acquire::GzipIndexes \"true\";\n",
		"etc/dpkg/dpkg.cfg.d/docker-apt-speedup":        "force-unsafe-io\n",
		"etc/hostname":                                  "",
		"etc/resolv.conf":                               "",
	}
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "usr/sbin/") {
			mode = 0o755
		}
		p := filepath.Join(rootfs, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		os.Remove(p)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			return err
		}
	}
	for _, pattern := range []string{
		"var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb",
		"var/cache/apt/archives/partial/*", "var/cache/debconf/*-old", "var/lib/dpkg/*-old",
		"var/cache/ldconfig/aux-cache", "var/log/*.log", "var/log/apt/*", "var/log/journal/*",
		"etc/*-", "tmp/*", "var/tmp/*", "run/*", "root/.bash_history", "dev/*",
	} {
		matches, _ := filepath.Glob(filepath.Join(rootfs, pattern))
		for _, m := range matches {
			if b := filepath.Base(m); b == "partial" || b == "lock" {
				continue
			}
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	// apt's partial directories belong to _apt, as apt leaves them; builds
	// differ on this (mmdebstrap), so set it.
	if uid, ok := passwdUID(filepath.Join(rootfs, "etc/passwd"), "_apt"); ok {
		for _, d := range []string{"var/lib/apt/lists/partial", "var/cache/apt/archives/partial"} {
			if err := os.Lchown(filepath.Join(rootfs, d), uid, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	if _, err := os.Stat(filepath.Join(rootfs, "etc/machine-id")); err == nil {
		if err := os.WriteFile(filepath.Join(rootfs, "etc/machine-id"), nil, 0o444); err != nil {
			return err
		}
	}
	return clampShadow(filepath.Join(rootfs, "etc/shadow"), o.epoch)
}

// passwdUID looks a user up in a passwd file.
func passwdUID(passwd, user string) (int, bool) {
	b, err := os.ReadFile(passwd)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 3 && f[0] == user {
			uid, err := strconv.Atoi(f[2])
			return uid, err == nil
		}
	}
	return 0, false
}

// writeSources writes the image's apt sources as official images have them:
// deb822 debian.sources from bookworm on, sources.list before.
func writeSources(m *MirrorInfo, suite, rootfs string) error {
	os.Remove(filepath.Join(rootfs, "etc/apt/sources.list"))
	old, _ := filepath.Glob(filepath.Join(rootfs, "etc/apt/sources.list.d/*"))
	for _, f := range old {
		os.Remove(f)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "etc/apt/sources.list.d"), 0o755); err != nil {
		return err
	}
	if legacySources(suite) {
		content := fmt.Sprintf("deb %s %s main\ndeb %s %s-security main\ndeb %s %s-updates main\n",
			m.URI, suite, m.SecurityURI, suite, m.URI, suite)
		return os.WriteFile(filepath.Join(rootfs, "etc/apt/sources.list"), []byte(content), 0o644)
	}
	keyring := "/usr/share/keyrings/debian-archive-keyring.pgp"
	if _, err := os.Stat(filepath.Join(rootfs, keyring)); err != nil {
		keyring = DefaultKeyring
	}
	content := fmt.Sprintf("Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n\n"+
		"Types: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n",
		m.URI, suite, suite, keyring, m.SecurityURI, suite, keyring)
	return os.WriteFile(filepath.Join(rootfs, "etc/apt/sources.list.d/debian.sources"), []byte(content), 0o644)
}

// legacySources reports releases whose official images use a one-line
// sources.list rather than deb822 debian.sources.
func legacySources(suite string) bool {
	switch suite {
	case "buster", "bullseye", "stretch", "jessie":
		return true
	}
	return false
}

// clampShadow sets every "last password change" day in /etc/shadow to the
// epoch's day, so the build date does not leak into the image.
func clampShadow(path string, epoch time.Time) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	day := strconv.FormatInt(epoch.Unix()/86400, 10)
	lines := bytes.Split(b, []byte("\n"))
	for i, l := range lines {
		f := strings.Split(string(l), ":")
		if len(f) > 2 && f[2] != "" {
			f[2] = day
			lines[i] = []byte(strings.Join(f, ":"))
		}
	}
	return os.WriteFile(path, bytes.Join(lines, []byte("\n")), fi.Mode().Perm())
}
