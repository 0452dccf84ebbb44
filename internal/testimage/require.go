package testimage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/testenv"
)

// UnavailableError says why this machine cannot build an image: not root, a
// tool missing, no mirror. Tests skip on it, except in CI.
type UnavailableError struct{ Reason string }

func (e *UnavailableError) Error() string { return "testimage: cannot build here: " + e.Reason }

// tools lists the programs a kind needs, each with its Debian package.
func tools(k Kind) [][2]string {
	switch k {
	case Debootstrap:
		return [][2]string{{"debootstrap", "debootstrap"}}
	case Chrootless:
		return [][2]string{{"mmdebstrap", "mmdebstrap"}, {"dpkg-deb", "dpkg"}, {"unshare", "util-linux"}}
	}
	return [][2]string{{"dpkg-deb", "dpkg"}}
}

// Check reports whether this machine can build s: root, the kind's tools,
// and a reachable mirror serving the suite. It returns an
// *UnavailableError when not.
func Check(ctx context.Context, s Spec, opts ...Option) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return &UnavailableError{Reason: fmt.Sprintf("%s images need root (file ownership, debootstrap)", s.Kind)}
	}
	for _, tp := range tools(s.Kind) {
		if _, err := exec.LookPath(tp[0]); err != nil {
			return &UnavailableError{Reason: fmt.Sprintf("%s not installed (apt-get install %s)", tp[0], tp[1])}
		}
	}
	o, err := newOptions(opts)
	if err != nil {
		return &UnavailableError{Reason: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := MirrorReachable(ctx, *o.mirror, s.Suite); err != nil {
		return &UnavailableError{Reason: "mirror unreachable: " + err.Error()}
	}
	return nil
}

// InCI reports CI=true, where tests must not skip for missing prerequisites
// (testenv.InCI, the suite's one policy).
func InCI() bool { return testenv.InCI() }

// Require builds (or reuses) s for a test. When the machine cannot build it
// the test is skipped with the reason — or, in CI, fails.
func Require(t testing.TB, s Spec, opts ...Option) *Image {
	t.Helper()
	requireAvailable(t, s, opts...)
	img, err := Build(t.Context(), s, opts...)
	if err != nil {
		t.Fatalf("building test image: %v", err)
	}
	if !img.Reused {
		t.Logf("built test image %s in %s (%d MB)", s.Name, img.BuildTime.Round(time.Second), img.Size>>20)
	}
	return img
}

// RequireIndex builds (or reuses) a multi-platform index, skipping like Require.
func RequireIndex(t testing.TB, name string, specs []Spec, opts ...Option) *Index {
	t.Helper()
	for _, s := range specs {
		requireAvailable(t, s, opts...)
	}
	idx, err := BuildIndex(t.Context(), name, specs, opts...)
	if err != nil {
		t.Fatalf("building test index: %v", err)
	}
	return idx
}

func requireAvailable(t testing.TB, s Spec, opts ...Option) {
	t.Helper()
	err := Check(t.Context(), s, opts...)
	var ue *UnavailableError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		testenv.Missing(t, "test image %s: %s", s.Name, ue.Reason)
	default:
		t.Fatalf("test image %s: %v", s.Name, err)
	}
}

// RequireTool skips (or, in CI, fails) unless the named program is
// installed (testenv.RequireTool).
func RequireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	return testenv.RequireTool(t, name, debianPackage)
}
