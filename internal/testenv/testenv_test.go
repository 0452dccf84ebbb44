package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// outcome records how a helper ended a test, without ending the real one.
type outcome struct {
	testing.TB
	failed, skipped string
}

func (o *outcome) Helper() {}
func (o *outcome) Fatalf(format string, args ...any) {
	o.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (o *outcome) Skipf(format string, args ...any) {
	o.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// end runs f on a recorder in its own goroutine (Goexit ends only that).
func end(t *testing.T, f func(testing.TB)) *outcome {
	o := &outcome{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(o)
	}()
	<-done
	return o
}

func TestMissingSkipsOutsideCIAndFailsInCI(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{{"", false}, {"false", false}, {"true", true}, {"TRUE", true}} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			o := end(t, func(tb testing.TB) { Missing(tb, "thing %d absent", 7) })
			if tc.wantFail && (o.failed == "" || o.skipped != "") {
				t.Errorf("CI=%q: failed %q, skipped %q; want a failure", tc.ci, o.failed, o.skipped)
			}
			if !tc.wantFail && (o.skipped == "" || o.failed != "") {
				t.Errorf("CI=%q: failed %q, skipped %q; want a skip", tc.ci, o.failed, o.skipped)
			}
			if msg := o.failed + o.skipped; msg == "" || !strings.Contains(msg, "thing 7 absent") {
				t.Errorf("message %q does not give the reason", msg)
			}
		})
	}
}

func TestRequireTool(t *testing.T) {
	t.Setenv("CI", "true")
	o := end(t, func(tb testing.TB) { RequireTool(tb, "drydock-no-such-program", "drydock-pkg") })
	if !strings.Contains(o.failed, "apt-get install drydock-pkg") {
		t.Errorf("missing program under CI: failed %q, skipped %q", o.failed, o.skipped)
	}
	o = end(t, func(tb testing.TB) {
		if p := RequireTool(tb, "sh", "dash"); p == "" {
			tb.Errorf("no path for sh")
		}
	})
	if o.failed != "" || o.skipped != "" {
		t.Errorf("sh: failed %q, skipped %q", o.failed, o.skipped)
	}
}
