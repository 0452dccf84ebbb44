package archive

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNoSources means the image names no apt source to update from and no
// mirror was given.
var ErrNoSources = errors.New("no apt source for the release")

// Archives says where the release's suites live when the image's sources
// do not say it, or must be overridden (WithMirror, WithSecurityMirror).
type Archives struct {
	Mirror         string // replaces the archive URI of the release's own suites
	SecurityMirror string // serves SUITE-security
	// SameArchiveSecurity puts SUITE-security in the main archive, as
	// Ubuntu does; Debian keeps it in a "-security" sibling archive.
	SameArchiveSecurity bool
}

// IsSecuritySuite reports a security suite: "bookworm-security", or the
// "buster/updates" of Debian 10 and older.
func IsSecuritySuite(suite string) bool {
	return strings.HasSuffix(suite, "-security") || strings.HasSuffix(suite, "/updates")
}

// releaseSuite reports whether suite belongs to release codename (but is not
// its security suite): "bookworm", "bookworm-updates", "bookworm-backports".
func releaseSuite(suite, codename string) bool {
	return suite == codename || (strings.HasPrefix(suite, codename+"-") && !IsSecuritySuite(suite))
}

// SecuritySibling is the rule for the security archive of a Debian archive
// URI: its sibling path with "-security" appended, the layout of Debian's own
// archives and their mirrors (".../debian" -> ".../debian-security").
func SecuritySibling(uri string) string { return strings.TrimRight(uri, "/") + "-security" }

// CompleteSuites applies a.Mirror and a.SecurityMirror, then adds the
// release's updates and security suites when the sources lack them, so
// updating sees what a fully configured apt would. The rule:
//
//   - the base source is the first one whose suite is codename; without
//     one, a.Mirror creates it (component "main"), else ErrNoSources;
//   - a.Mirror replaces the URI of every source of the release's own suites
//     (codename, codename-*); a.SecurityMirror, else a.Mirror's security
//     archive, replaces the URI of codename's security suite;
//   - codename-updates is added on the base source's URI when missing;
//   - codename-security is added when no codename-security (or
//     codename/updates) suite is present: on a.SecurityMirror, else the
//     base URI itself when a.SameArchiveSecurity (Ubuntu), else
//     SecuritySibling(base URI);
//   - added suites copy the base's components, Signed-By and architectures
//     and have Origin "added".
//
// Other sources (third-party repositories) are left as they are.
func CompleteSuites(srcs []Source, codename string, a Archives) ([]Source, error) {
	if codename == "" {
		return nil, errors.New("completing apt suites: unknown release codename")
	}
	security := func(base string) string {
		switch {
		case a.SecurityMirror != "":
			return a.SecurityMirror
		case a.SameArchiveSecurity:
			return base
		}
		return SecuritySibling(base)
	}
	out := slices.Clone(srcs)
	for i := range out {
		out[i].Components = slices.Clone(out[i].Components)
		s := &out[i]
		switch {
		case a.Mirror != "" && releaseSuite(s.Suite, codename):
			s.URI = a.Mirror
		case IsSecuritySuite(s.Suite) && strings.HasPrefix(s.Suite, codename) && a.SecurityMirror != "":
			s.URI = a.SecurityMirror
		case IsSecuritySuite(s.Suite) && strings.HasPrefix(s.Suite, codename) && a.Mirror != "":
			s.URI = security(a.Mirror)
		}
	}
	bi := slices.IndexFunc(out, func(s Source) bool { return s.Suite == codename })
	if bi < 0 {
		if a.Mirror == "" {
			return nil, fmt.Errorf("completing apt suites: no source for %q in the image, and no mirror given: %w", codename, ErrNoSources)
		}
		out = append(out, Source{URI: a.Mirror, Suite: codename, Components: []string{"main"}, Origin: "added"})
		bi = len(out) - 1
	}
	base := out[bi]
	has := func(pred func(string) bool) bool {
		return slices.ContainsFunc(out, func(s Source) bool { return pred(s.Suite) })
	}
	add := func(uri, suite string) {
		s := base
		s.URI, s.Suite, s.Origin = uri, suite, "added"
		s.Components = slices.Clone(base.Components)
		out = append(out, s)
	}
	if !has(func(s string) bool { return s == codename+"-updates" }) {
		add(base.URI, codename+"-updates")
	}
	if !has(func(s string) bool { return s == codename+"-security" || s == codename+"/updates" }) {
		add(security(base.URI), codename+"-security")
	}
	return out, nil
}
