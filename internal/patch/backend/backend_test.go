package backend

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestScriptError(t *testing.T) {
	se := &ScriptError{Unhandled: []ScriptAction{
		{Package: "openssl", Script: "postinst", Detail: `runs "ln -sf /etc/ssl /usr/lib/ssl"`},
		{Package: "libssl3, libc6", Script: "trigger ldconfig", Detail: "the patch adds or removes libraries (+usr/lib/libx.so.1)"},
		{Package: "nginx-common", Script: "prerm (old)", Detail: "runs commands (\"x\")"},
	}}
	var err error = se
	want := "maintainer scripts drydock cannot apply without running them:\n" +
		"  openssl postinst: runs \"ln -sf /etc/ssl /usr/lib/ssl\"\n" +
		"  libssl3, libc6 trigger ldconfig: the patch adds or removes libraries (+usr/lib/libx.so.1)\n" +
		"  nginx-common prerm (old): runs commands (\"x\")\n" +
		"(run them in the sandbox with --sandbox auto, or patch only other packages with --report)"
	if got := err.Error(); got != want {
		t.Errorf("Error():\n%s\nwant:\n%s", got, want)
	}
	if !errors.Is(err, ErrScripts) {
		t.Error("errors.Is(ScriptError, ErrScripts) = false")
	}
	wrapped := fmt.Errorf("patch linux/amd64: %w", err)
	if !errors.Is(wrapped, ErrScripts) {
		t.Error("errors.Is(wrapped ScriptError, ErrScripts) = false")
	}
	var got *ScriptError
	if !errors.As(wrapped, &got) || len(got.Unhandled) != 3 {
		t.Errorf("errors.As = %v", got)
	}
	if errors.Is(err, io.EOF) || errors.Is(ErrScripts, err) {
		t.Error("ScriptError matches unrelated errors")
	}
	if msg := (&ScriptError{}).Error(); !strings.HasPrefix(msg, "maintainer scripts") {
		t.Errorf("empty ScriptError message %q", msg)
	}
	// With the sandbox's reason, the message says what to configure and
	// errors.Is sees the reason.
	why := errors.New("user namespaces are disabled: set user.max_user_namespaces")
	err = &ScriptError{Unhandled: se.Unhandled[:1], Sandbox: why}
	if !strings.Contains(err.Error(), "cannot run in a sandbox: "+why.Error()) || !errors.Is(err, why) || !errors.Is(err, ErrScripts) {
		t.Errorf("ScriptError with a sandbox reason: %q", err)
	}
}

func TestParseSandboxMode(t *testing.T) {
	for in, want := range map[string]SandboxMode{"": SandboxAuto, "auto": SandboxAuto, "always": SandboxAlways, "never": SandboxNever} {
		if got, err := ParseSandboxMode(in); err != nil || got != want {
			t.Errorf("ParseSandboxMode(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"yes", "Auto", "true"} {
		if _, err := ParseSandboxMode(in); err == nil {
			t.Errorf("ParseSandboxMode(%q) accepted", in)
		}
	}
}
