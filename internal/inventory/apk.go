package inventory

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/drydock-project/drydock/internal/deb822"
	"github.com/drydock-project/drydock/internal/refusal"
	"github.com/drydock-project/drydock/internal/version"
)

// apkInstalled is Alpine's installed-package database, fs.FS style.
const apkInstalled = "lib/apk/db/installed"

// APK reads Alpine's apk database, lib/apk/db/installed: stanzas of
// "X:value" lines separated by blank lines (apk-tools' documented format),
// of which it reads P (name), V (version), A (arch), o (origin), m
// (maintainer), I (installed size) and, WithFiles, F (directory) and R
// (file in the last directory).
//
// The zero value is an apk analyzer with default options.
type APK struct{ opts options }

// NewAPK returns an apk analyzer.
func NewAPK(opts ...Option) (*APK, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("apk analyzer: %w", err)
	}
	return &APK{opts: o}, nil
}

// Type returns "apk".
func (*APK) Type() string { return "apk" }

// Version of the apk analyzer's output.
func (*APK) Version() int { return 1 }

// Required reports lib/apk/db/installed.
func (*APK) Required(p string) bool { return p == apkInstalled }

// Analyze reads lib/apk/db/installed, if it exists.
func (a *APK) Analyze(ctx context.Context, fsys fs.FS) ([]Package, error) {
	f, size, err := openBounded(fsys, apkInstalled, a.opts.limit())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var r *refusal.Error
	if errors.As(err, &r) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("opening apk database %s: %w", apkInstalled, err)
	}
	defer f.Close()
	b := a.opts.budget()
	if err := b.file(apkInstalled, size); err != nil {
		return nil, err
	}
	var partial PartialError
	pkgs, err := parseAPKInstalled(ctx, f, apkInstalled, a.opts.files, &partial, b)
	if err != nil {
		return nil, parseErr("apk", apkInstalled, err)
	}
	return pkgs, partial.errOrNil()
}

// apkEntry accumulates one stanza of the installed database.
type apkEntry struct {
	line       int
	pkg        Package
	files      []string
	dir        string
	bad        error
	size, seen int
}

// parseAPKInstalled reads the packages of an apk installed database named
// name; malformed stanzas are recorded in partial, packages counted in b
// (nil: no limit).
func parseAPKInstalled(ctx context.Context, r io.Reader, name string, withFiles bool, partial *PartialError, b *budget) ([]Package, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), deb822.MaxLineLen)
	var (
		pkgs   []Package
		cur    *apkEntry
		lineNo int
	)
	flush := func() error {
		if cur == nil {
			return nil
		}
		e := cur
		cur = nil
		if e.bad == nil {
			e.bad = validateAPK(&e.pkg)
		}
		if e.bad != nil {
			partial.add(&EntryError{Path: name, Line: e.line, Name: deb822.Truncate(e.pkg.Name, 80), Err: e.bad})
			return nil
		}
		if b != nil {
			if err := b.pkg(name); err != nil {
				return err
			}
		}
		if withFiles {
			slices.Sort(e.files)
			e.pkg.Files = slices.Compact(e.files)
		}
		e.pkg.DBPath = name
		pkgs = append(pkgs, e.pkg)
		return nil
	}
	for sc.Scan() {
		lineNo++
		if lineNo%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if cur == nil {
			cur = &apkEntry{line: lineNo, pkg: Package{Ecosystem: version.EcosystemAPK, Status: "installed"}}
		}
		if cur.bad != nil {
			continue
		}
		if cur.size += len(line) + 1; cur.size > deb822.MaxParagraphLen {
			cur.bad = fmt.Errorf("stanza longer than %d bytes", deb822.MaxParagraphLen)
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			cur.bad = fmt.Errorf("line %d: malformed line %q", lineNo, deb822.Truncate(line, 80))
			continue
		}
		key, val := line[0], line[2:]
		if err := cur.set(key, val, withFiles); err != nil {
			cur.bad = fmt.Errorf("line %d: %w", lineNo, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: %w (more than %d bytes)", lineNo+1, deb822.ErrLineTooLong, deb822.MaxLineLen)
		}
		return nil, fmt.Errorf("line %d: %w", lineNo, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return pkgs, nil
}

// Bits of apkEntry.seen for the single-valued fields.
const (
	apkSeenP = 1 << iota
	apkSeenV
	apkSeenA
	apkSeenO
	apkSeenM
	apkSeenI
)

// set records one "key:value" line.
func (e *apkEntry) set(key byte, val string, withFiles bool) error {
	single := func(bit int, dst *string) error {
		if e.seen&bit != 0 {
			return fmt.Errorf("duplicate %c: field", key)
		}
		e.seen |= bit
		*dst = val
		return nil
	}
	switch key {
	case 'P':
		return single(apkSeenP, &e.pkg.Name)
	case 'V':
		return single(apkSeenV, &e.pkg.Version)
	case 'A':
		return single(apkSeenA, &e.pkg.Arch)
	case 'o':
		return single(apkSeenO, &e.pkg.SourceName)
	case 'm':
		return single(apkSeenM, &e.pkg.Maintainer)
	case 'I':
		var s string
		if err := single(apkSeenI, &s); err != nil {
			return err
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid installed size %q", deb822.Truncate(s, 80))
		}
		e.pkg.InstalledSize = n
	case 'F':
		e.dir = val
	case 'R':
		if withFiles {
			e.files = append(e.files, path.Join("/", e.dir, val))
		}
	}
	return nil
}

// validateAPK checks a package read from the database and fills its source
// fields: the origin (or the package itself) at the package's version.
func validateAPK(p *Package) error {
	if !validAPKName(p.Name) {
		return fmt.Errorf("invalid or missing P: field %q", deb822.Truncate(p.Name, 80))
	}
	if !(version.APK{}).Valid(p.Version) {
		return fmt.Errorf("invalid or missing V: field %q", deb822.Truncate(p.Version, 80))
	}
	if p.SourceName == "" {
		p.SourceName = p.Name
	} else if !validAPKName(p.SourceName) {
		return fmt.Errorf("invalid o: field %q", deb822.Truncate(p.SourceName, 80))
	}
	if !validAPKArch(p.Arch) {
		return fmt.Errorf("invalid A: field %q", deb822.Truncate(p.Arch, 80))
	}
	p.SourceVersion = p.Version
	p.Maintainer = strings.ToValidUTF8(p.Maintainer, "\uFFFD")
	return nil
}

// validAPKName checks a package name: printable ASCII without white space
// or "/", at most 256 bytes (apk-tools is more permissive than dpkg).
func validAPKName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '/' {
			return false
		}
	}
	return true
}

// validAPKArch checks an architecture: empty, or letters, digits and "_".
func validAPKArch(s string) bool {
	return len(s) <= 64 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == ""
}
