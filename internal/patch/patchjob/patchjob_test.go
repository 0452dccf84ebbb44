package patchjob

import (
	"errors"
	"fmt"
	"testing"

	"github.com/drydock-project/drydock/internal/patch"
)

func TestTargets(t *testing.T) {
	for _, c := range []struct {
		image, output, in, out string
	}{
		{"quarantine/nginx:1", "", "quarantine/nginx", "quarantine/nginx"},
		{"live/team/app:2", "", "live/team/app", "quarantine/team/app"},
		{"live/app@sha256:" + fmt.Sprintf("%064d", 0), "quarantine/app:3", "live/app", "quarantine/app"},
		{"quarantine/a:1", "quarantine/b", "quarantine/a", "quarantine/b"},
	} {
		in, out, err := Targets(patch.Request{Image: c.image, Output: c.output})
		if err != nil || in != c.in || out != c.out {
			t.Errorf("%s -> %q: %q, %q, %v; want %q, %q", c.image, c.output, in, out, err, c.in, c.out)
		}
	}
	for _, c := range []struct{ image, output string }{
		{"registry.example.com/app:1", ""},
		{"oci:/tmp/x:1", ""},
		{"docker-archive:/x.tar", ""},
		{"app:1", ""},
		{"quarantine/app:1", "live/app:2"},
		{"quarantine/app:1", "other/app:2"},
		{"quarantine/app:1", "oci:/tmp/out"},
		{"quarantine/UPPER:1", ""},
	} {
		if _, _, err := Targets(patch.Request{Image: c.image, Output: c.output}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s -> %q: %v, want ErrInvalid", c.image, c.output, err)
		}
	}
}

func TestPermanent(t *testing.T) {
	for _, err := range []error{patch.ErrInvalidRequest, patch.ErrEndOfLife, patch.ErrScripts, patch.ErrUnsupported, patch.ErrHostileImage} {
		if !permanent(fmt.Errorf("wrapped: %w", err)) {
			t.Errorf("%v is retried", err)
		}
	}
	if permanent(errors.New("connection reset by peer")) {
		t.Error("a network error is not retried")
	}
}
