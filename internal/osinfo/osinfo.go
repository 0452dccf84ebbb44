// Package osinfo tells which operating system an image holds and whether
// its release is still supported.
//
// Detect reads an image's root filesystem (any fs.FS, typically a
// rootfs.FS): etc/os-release, else usr/lib/os-release, else the older
// release files (etc/debian_version, etc/alpine-release,
// etc/redhat-release, etc/centos-release). Distroless Debian images carry
// base-files' os-release and are detected the same way; OS.Distroless marks
// them. Lifecycle judges support from distro-info-data releases
// (ParseDistroInfo) at a time the caller passes in.
package osinfo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"

	"github.com/drydock-project/drydock/internal/refusal"
)

// ErrUnsupportedOS is wrapped by Detect's error when the OS is missing or
// is not one drydock supports. That error is a *refusal.Error of kind
// refusal.Unsupported: it is permanent (the same image is refused again).
var ErrUnsupportedOS = errors.New("unsupported OS")

// unsupported returns the refusal Detect reports for an OS it cannot use.
func unsupported(format string, args ...any) error {
	return &refusal.Error{Kind: refusal.Unsupported, Reason: "unsupported OS: " + fmt.Sprintf(format, args...), Err: ErrUnsupportedOS}
}

// Family groups distributions that share a package manager.
type Family string

// Families.
const (
	FamilyDebian  Family = "debian" // Debian, Ubuntu and derivatives: dpkg/apt
	FamilyAlpine  Family = "alpine" // apk
	FamilyRHEL    Family = "rhel"   // RHEL, CentOS, Fedora, Rocky, Alma, ...: rpm
	FamilyUnknown Family = "unknown"
)

// OS is what Detect found.
type OS struct {
	ID              string   // os-release ID: "debian", "ubuntu", "alpine", "rhel", ...
	IDLike          []string // os-release ID_LIKE
	Name            string
	PrettyName      string
	VersionID       string // "12", "22.04", "3.21.0"; empty on Debian testing/sid
	VersionCodename string // "bookworm", "jammy"
	Family          Family
	// DebianVersion is etc/debian_version ("12.8", "trixie/sid"), when
	// the image has one.
	DebianVersion string
	// Distroless is set for a Debian image without a shell or package
	// manager whose packages are recorded in var/lib/dpkg/status.d.
	Distroless bool
	// Source is the file the identity came from.
	Source string
}

// maxReleaseFile bounds the small release files read.
const maxReleaseFile = 64 << 10

// Detect identifies the OS of the root filesystem fsys. An OS that cannot be
// identified, or whose family is unknown, is an error wrapping
// ErrUnsupportedOS; in the latter case the returned OS holds what was read.
func Detect(fsys fs.FS) (OS, error) {
	var o OS
	found := false
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		kv, err := readOSRelease(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return OS{}, err
		}
		o = OS{
			ID:              strings.ToLower(kv["ID"]),
			IDLike:          strings.Fields(strings.ToLower(kv["ID_LIKE"])),
			Name:            kv["NAME"],
			PrettyName:      kv["PRETTY_NAME"],
			VersionID:       kv["VERSION_ID"],
			VersionCodename: kv["VERSION_CODENAME"],
			Source:          p,
		}
		if o.ID == "" {
			o.ID = "linux" // os-release(5) default
		}
		if len(o.IDLike) == 0 {
			o.IDLike = nil
		}
		found = true
		break
	}
	dv, err := readSmall(fsys, "etc/debian_version")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return OS{}, err
	}
	if !found {
		if o, found, err = detectLegacy(fsys, dv); err != nil {
			return OS{}, err
		}
		if !found {
			return OS{}, unsupported("no os-release or release file found")
		}
	}
	o.Family = familyOf(o.ID, o.IDLike)
	if o.Family == FamilyDebian {
		o.DebianVersion = dv
		if o.Distroless, err = distroless(fsys); err != nil {
			return OS{}, err
		}
	}
	if o.Family == FamilyUnknown {
		return o, unsupported("%s (ID %q, from %s)", o.display(), o.ID, o.Source)
	}
	return o, nil
}

func (o OS) display() string {
	if o.PrettyName != "" {
		return o.PrettyName
	}
	return strings.TrimSpace(o.ID + " " + o.VersionID)
}

func readOSRelease(fsys fs.FS, p string) (map[string]string, error) {
	f, err := fsys.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read os-release %s: %w", p, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("read os-release %s: is a directory", p)
	}
	kv, err := ParseOSRelease(f)
	if err != nil {
		return nil, fmt.Errorf("read os-release %s: %w", p, err)
	}
	return kv, nil
}

// readSmall reads a one-line release file, trimmed.
func readSmall(fsys fs.FS, p string) (string, error) {
	f, err := fsys.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return "", fmt.Errorf("read %s: is a directory", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxReleaseFile))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return strings.TrimSpace(string(b)), nil
}

var releaseRE = regexp.MustCompile(`^(.*?)\s+release\s+([0-9][0-9A-Za-z.]*)`)

// detectLegacy identifies an OS without os-release from its release files.
func detectLegacy(fsys fs.FS, debianVersion string) (OS, bool, error) {
	if debianVersion != "" {
		o := OS{ID: "debian", Name: "Debian GNU/Linux", Source: "etc/debian_version"}
		if major, ok := numericMajor(debianVersion); ok {
			o.VersionID = major
		} else {
			o.VersionCodename, _, _ = strings.Cut(debianVersion, "/")
		}
		o.PrettyName = "Debian GNU/Linux " + debianVersion
		return o, true, nil
	}
	v, err := readSmall(fsys, "etc/alpine-release")
	switch {
	case err == nil && v != "":
		return OS{ID: "alpine", Name: "Alpine Linux", PrettyName: "Alpine Linux v" + v, VersionID: v,
			Source: "etc/alpine-release"}, true, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return OS{}, false, err
	}
	for _, p := range []string{"etc/centos-release", "etc/redhat-release"} {
		line, err := readSmall(fsys, p)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && line == "") {
			continue
		}
		if err != nil {
			return OS{}, false, err
		}
		line, _, _ = strings.Cut(line, "\n")
		o := OS{ID: "rhel", IDLike: []string{"fedora"}, PrettyName: line, Source: p}
		if m := releaseRE.FindStringSubmatch(line); m != nil {
			o.Name, o.VersionID = m[1], m[2]
		}
		lower := strings.ToLower(line)
		switch {
		case strings.HasPrefix(lower, "centos"):
			o.ID, o.IDLike = "centos", []string{"rhel", "fedora"}
			o.VersionID, _, _ = strings.Cut(o.VersionID, ".")
		case strings.HasPrefix(lower, "fedora"):
			o.ID, o.IDLike = "fedora", nil
		case strings.HasPrefix(lower, "rocky"):
			o.ID, o.IDLike = "rocky", []string{"rhel", "centos", "fedora"}
		case strings.HasPrefix(lower, "almalinux"):
			o.ID, o.IDLike = "almalinux", []string{"rhel", "centos", "fedora"}
		}
		return o, true, nil
	}
	return OS{}, false, nil
}

// numericMajor returns "12" for "12.8" or "12"; false for "trixie/sid".
func numericMajor(v string) (string, bool) {
	major, _, _ := strings.Cut(v, ".")
	if major == "" {
		return "", false
	}
	for _, c := range major {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return major, true
}

var families = map[string]Family{
	"debian": FamilyDebian, "ubuntu": FamilyDebian,
	"alpine": FamilyAlpine,
	"rhel":   FamilyRHEL, "centos": FamilyRHEL, "fedora": FamilyRHEL, "rocky": FamilyRHEL,
	"almalinux": FamilyRHEL, "ol": FamilyRHEL, "amzn": FamilyRHEL,
}

func familyOf(id string, like []string) Family {
	if f, ok := families[id]; ok {
		return f
	}
	for _, l := range like {
		if f, ok := families[l]; ok {
			return f
		}
	}
	return FamilyUnknown
}

var (
	shells          = []string{"bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/bash", "bin/busybox", "usr/bin/busybox"}
	packageManagers = []string{"usr/bin/dpkg", "bin/dpkg", "usr/bin/apt-get", "usr/bin/apt"}
)

// distroless reports a dpkg status.d without status, shell or dpkg.
func distroless(fsys fs.FS) (bool, error) {
	st, err := fs.Stat(fsys, "var/lib/dpkg/status.d")
	if err != nil || !st.IsDir() {
		return false, nil
	}
	for _, p := range append(append([]string{"var/lib/dpkg/status"}, shells...), packageManagers...) {
		_, err := fs.Stat(fsys, p)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("checking for %s: %w", p, err)
		}
	}
	return true, nil
}

// ReleaseKey is the release as the vulnerability DB keys it: the Debian
// major version ("12"; on testing/sid without VERSION_ID, the codename from
// etc/debian_version, "trixie"), the Ubuntu VERSION_ID ("22.04"), the
// Alpine major.minor ("3.21", or "edge" for a pre-release), the major
// version for the RHEL family ("9"), else VERSION_ID.
func (o OS) ReleaseKey() string {
	switch {
	case o.ID == "ubuntu":
		return o.VersionID
	case o.ID == "debian":
		if major, ok := numericMajor(o.VersionID); ok {
			return major
		}
		if major, ok := numericMajor(o.DebianVersion); ok {
			return major
		}
		if code, _, _ := strings.Cut(o.DebianVersion, "/"); code != "" {
			return code
		}
		return o.VersionCodename
	case o.Family == FamilyAlpine:
		if strings.Contains(o.VersionID, "_") || o.VersionID == "edge" {
			return "edge"
		}
		parts := strings.SplitN(o.VersionID, ".", 3)
		if len(parts) >= 2 {
			return parts[0] + "." + parts[1]
		}
		return o.VersionID
	case o.Family == FamilyRHEL:
		major, _, _ := strings.Cut(o.VersionID, ".")
		return major
	}
	return o.VersionID
}
