package version

import (
	"errors"
	"fmt"
	"strings"

	apkversion "github.com/knqyf263/go-apk-version"
	debversion "github.com/knqyf263/go-deb-version"
	rpmversion "github.com/knqyf263/go-rpm-version"
)

// Ecosystem names accepted by For. They match inventory.Package.Ecosystem.
const (
	EcosystemDeb = "deb"
	EcosystemAPK = "apk"
	EcosystemRPM = "rpm"
)

// ErrUnsupportedEcosystem is returned by For for an ecosystem it has no
// Comparer for.
var ErrUnsupportedEcosystem = errors.New("unsupported package ecosystem")

// InvalidVersionError reports a version string a Comparer cannot order.
type InvalidVersionError struct {
	Ecosystem string // "deb", "apk", "rpm"
	Version   string // the offending input, verbatim
	Err       error  // the parser's reason, when it gave one
}

func (e *InvalidVersionError) Error() string {
	msg := fmt.Sprintf("invalid %s version %q", e.Ecosystem, e.Version)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *InvalidVersionError) Unwrap() error { return e.Err }

// Comparer orders the versions of one package ecosystem, as the ecosystem's
// package manager does.
type Comparer interface {
	// Compare returns -1 when a < b, 0 when they are equal and +1 when
	// a > b. An invalid a or b gives an *InvalidVersionError naming it.
	Compare(a, b string) (int, error)
	// Valid reports whether v is a well-formed version of the ecosystem.
	Valid(v string) bool
}

// For returns the Comparer of an ecosystem: "deb", "apk" or "rpm". Other
// names give an error wrapping ErrUnsupportedEcosystem.
func For(ecosystem string) (Comparer, error) {
	switch ecosystem {
	case EcosystemDeb:
		return Deb{}, nil
	case EcosystemAPK:
		return APK{}, nil
	case EcosystemRPM:
		return RPM{}, nil
	}
	return nil, fmt.Errorf("version comparer for %q: %w", ecosystem, ErrUnsupportedEcosystem)
}

// sign maps any integer to -1, 0 or +1.
func sign(n int) int { return max(-1, min(1, n)) }

// Deb orders Debian package versions ([epoch:]upstream[-revision]) as dpkg
// does, with github.com/knqyf263/go-deb-version: "~" sorts before anything,
// even the end of the string, and a missing epoch is 0.
type Deb struct{}

// Valid reports whether v is a well-formed Debian version.
func (Deb) Valid(v string) bool {
	_, err := parseDeb(v)
	return err == nil
}

// Compare orders two Debian versions.
func (Deb) Compare(a, b string) (int, error) {
	va, err := parseDeb(a)
	if err != nil {
		return 0, err
	}
	vb, err := parseDeb(b)
	if err != nil {
		return 0, err
	}
	return sign(va.Compare(vb)), nil
}

func parseDeb(s string) (debversion.Version, error) {
	// go-deb-version trims surrounding spaces and takes Unicode letters;
	// dpkg allows neither, and neither do we.
	for _, r := range s {
		if r <= ' ' || r >= 0x7f {
			return debversion.Version{}, &InvalidVersionError{Ecosystem: EcosystemDeb, Version: s, Err: fmt.Errorf("character %q not allowed", r)}
		}
	}
	v, err := debversion.NewVersion(s)
	if err != nil {
		return debversion.Version{}, &InvalidVersionError{Ecosystem: EcosystemDeb, Version: s, Err: err}
	}
	return v, nil
}

// APK orders Alpine package versions (e.g. "1.2.3_rc1-r0") as apk-tools
// does, with github.com/knqyf263/go-apk-version: suffixes _alpha, _beta,
// _pre and _rc sort before the release, _p after it, and "-rN" is the
// package revision.
type APK struct{}

// Valid reports whether v is a well-formed Alpine version.
func (APK) Valid(v string) bool { return v != "" && apkversion.Valid(v) }

// Compare orders two Alpine versions.
func (c APK) Compare(a, b string) (int, error) {
	for _, s := range []string{a, b} {
		if !c.Valid(s) {
			return 0, &InvalidVersionError{Ecosystem: EcosystemAPK, Version: s}
		}
	}
	return sign(apkversion.Version(a).Compare(apkversion.Version(b))), nil
}

// RPM orders RPM versions ([epoch:]version[-release]) as rpmvercmp does,
// with github.com/knqyf263/go-rpm-version: "~" sorts before anything (pre-
// releases), "^" after the end of a version but before any other addition
// (snapshots), and a missing epoch is 0.
type RPM struct{}

// Valid reports whether v is a well-formed EVR string: an optional decimal
// epoch, a non-empty version and an optional non-empty release, each made of
// the characters rpm allows in them (letters, digits and "._+~^").
func (RPM) Valid(v string) bool { return validRPM(v) == nil }

// Compare orders two RPM versions.
func (RPM) Compare(a, b string) (int, error) {
	for _, s := range []string{a, b} {
		if err := validRPM(s); err != nil {
			return 0, &InvalidVersionError{Ecosystem: EcosystemRPM, Version: s, Err: err}
		}
	}
	return sign(rpmversion.NewVersion(a).Compare(rpmversion.NewVersion(b))), nil
}

// validRPM checks what go-rpm-version accepts silently: it parses any
// string, reading a bad epoch as 0.
func validRPM(s string) error {
	evr := s
	if epoch, rest, ok := strings.Cut(evr, ":"); ok {
		if epoch == "" || len(epoch) > 10 || strings.Trim(epoch, "0123456789") != "" {
			return fmt.Errorf("epoch %q is not a small decimal number", epoch)
		}
		evr = rest
	}
	ver, rel, hasRel := strings.Cut(evr, "-")
	if ver == "" {
		return errors.New("empty version")
	}
	if hasRel && rel == "" {
		return errors.New("empty release")
	}
	for _, part := range []string{ver, rel} {
		for _, r := range part {
			if !isRPMVersionChar(r) {
				return fmt.Errorf("character %q not allowed", r)
			}
		}
	}
	return nil
}

func isRPMVersionChar(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("._+~^", r)
}
