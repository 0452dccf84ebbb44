package apt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/patch/sandbox"
	"github.com/drydock-project/drydock/internal/version"
)

// Maintainer scripts.
//
// dpkg runs, for an upgrade from version OLD to NEW: the old prerm
// ("upgrade NEW"), the new preinst ("upgrade OLD"), the old postrm
// ("upgrade NEW") and, once everything is unpacked, the new postinst
// ("configure OLD"); then the triggers packages activated. drydock does not
// run image code by default, so each of those is handled as follows:
//
//   - Scripts, or parts of scripts, that have no effect when a package is
//     upgraded inside an image are recognized and skipped: comments,
//     "set -e", "exit 0", the debhelper sections of dh_installsystemd,
//     dh_installinit, dh_systemd_enable, dh_systemd_start,
//     dh_installsystemduser (service enablement and restarts: no init
//     system runs while an image is built), dh_installdebconf (acts on
//     purge only), and dh_installdeb's dpkg-maintscript-helper calls whose
//     prior-version the installed version already reaches (dpkg-
//     maintscript-helper does nothing then).
//   - The ldconfig trigger (activated by every shared library package) is
//     handled natively: ldconfig rebuilds /etc/ld.so.cache from the names
//     of the libraries in the library directories; when the patch adds or
//     removes no library name there, the cache ldconfig would write is the
//     one the image has, so nothing is to be done. A patch that changes the
//     set of library names is refused with the reason.
//   - Distroless images (packages in status.d, no shell, no dpkg) never
//     ran maintainer scripts: their builders only unpack packages. A patch
//     of such an image does the same and records it.
//   - Anything else stops the patch with a clear reason naming the package
//     and script: drydock never leaves an image half-configured silently.

// ScriptAction records how one maintainer script or trigger was handled.
type ScriptAction struct {
	Package string `json:"package"`
	Script  string `json:"script"`           // "postinst", "prerm (old)", "trigger ldconfig", ...
	Action  string `json:"action"`           // "no-op", "native", "skipped-distroless"
	Detail  string `json:"detail,omitempty"` // what was recognized or done
}

// ScriptError is the refusal of a patch whose maintainer scripts drydock
// cannot handle.
type ScriptError struct {
	Unhandled []ScriptAction // Action holds the reason
}

func (e *ScriptError) Error() string {
	var b strings.Builder
	b.WriteString("maintainer scripts drydock cannot apply without running them:")
	for _, a := range e.Unhandled {
		fmt.Fprintf(&b, "\n  %s %s: %s", a.Package, a.Script, a.Detail)
	}
	b.WriteString("\n(run them isolated with --sandbox, or patch only other packages with --report)")
	return b.String()
}

// ErrScripts is wrapped by *ScriptError (errors.Is).
var ErrScripts = errors.New("unhandled maintainer scripts")

// Is makes errors.Is(err, ErrScripts) hold.
func (e *ScriptError) Is(target error) bool { return target == ErrScripts }

// ScriptInput is what RunScripts needs: the image, the changeset the
// Unpacker filled, and what it installed.
type ScriptInput struct {
	Image      v1.Image
	FS         ImageFS
	Arch       string
	Changes    *layer.Changeset
	Installed  []*Installed
	Distroless bool
	Mtime      time.Time
	TempDir    string
	// Sandbox allows running the scripts drydock cannot handle natively
	// in a sandbox (see internal/patch/sandbox), when the host provides
	// one for the image's architecture.
	Sandbox bool
	// SandboxDir is where the sandbox tree is extracted ("": a tmpfs
	// when one has room, else the temporary directory).
	SandboxDir string
	// Log receives the output of sandboxed scripts.
	Log *slog.Logger
}

// RunScripts handles the maintainer scripts and triggers of the installed
// packages (see the policy above), adding what they change to the
// changeset, and returns what it did for each. An unhandled script is a
// *ScriptError listing all of them.
func RunScripts(ctx context.Context, in ScriptInput) ([]ScriptAction, error) {
	var done, unhandled []ScriptAction
	if in.Distroless {
		for _, p := range in.Installed {
			for _, s := range scriptNames {
				if _, ok := p.Control[s]; ok && s != "config" {
					done = append(done, ScriptAction{Package: p.Name, Script: s, Action: "skipped-distroless",
						Detail: "distroless images record packages without running their scripts"})
				}
			}
		}
		return done, nil
	}
	triggers := map[string][]string{} // trigger name -> packages activating it
	var sandboxed []scriptRun
	for _, p := range in.Installed {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, r := range dpkgRuns(p) {
			if r.body == nil {
				continue
			}
			detail, ok := classifyScript(string(r.body), p.From)
			a := ScriptAction{Package: p.Name, Script: r.name, Action: "no-op", Detail: detail}
			if ok {
				done = append(done, a)
			} else {
				unhandled = append(unhandled, a)
				sandboxed = append(sandboxed, r)
			}
		}
		for _, t := range parseTriggerActivations(p.Control["triggers"]) {
			triggers[t] = append(triggers[t], p.Name)
		}
	}
	fileTriggers, err := activatedFileTriggers(in)
	if err != nil {
		return nil, err
	}
	for t, pkgs := range fileTriggers {
		triggers[t] = append(triggers[t], pkgs...)
	}
	var pendingTriggers []string
	for _, t := range slices.Sorted(mapsKeys(triggers)) {
		pkgs := strings.Join(triggers[t], ", ")
		switch t {
		case "ldconfig":
			changed := libraryNamesChanged(in)
			if len(changed) == 0 {
				done = append(done, ScriptAction{Package: pkgs, Script: "trigger ldconfig", Action: "native",
					Detail: "no library name added or removed: /etc/ld.so.cache stays valid"})
				continue
			}
			unhandled = append(unhandled, ScriptAction{Package: pkgs, Script: "trigger ldconfig",
				Detail: "the patch adds or removes libraries (" + strings.Join(changed, ", ") + "), so /etc/ld.so.cache must be rebuilt"})
		default:
			unhandled = append(unhandled, ScriptAction{Package: pkgs, Script: "trigger " + t,
				Detail: "trigger processing is not handled natively"})
		}
		pendingTriggers = append(pendingTriggers, t)
	}
	if len(unhandled) == 0 {
		return done, nil
	}
	if !in.Sandbox {
		return done, &ScriptError{Unhandled: unhandled}
	}
	if err := sandbox.Available(in.Arch); err != nil {
		return done, fmt.Errorf("%w\n(--sandbox cannot help: %v)", &ScriptError{Unhandled: unhandled}, err)
	}
	ran, err := runSandboxed(ctx, in, sandboxed, pendingTriggers)
	if err != nil {
		return done, err
	}
	return append(done, ran...), nil
}

// parseTriggerActivations returns the triggers a package's triggers
// control file activates.
func parseTriggerActivations(data []byte) []string {
	var out []string
	for l := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "activate" || f[0] == "activate-noawait") {
			out = append(out, f[1])
		}
	}
	return out
}

// libDirs are where ldconfig looks for libraries besides ld.so.conf's
// directories; the multiarch directories come from Debian's ld.so.conf.d.
var libDirRE = regexp.MustCompile(`^(usr/)?(local/)?lib(32|64|x32)?(/[a-z0-9_]+-linux-[a-z0-9_]+)?$`)

// libraryNamesChanged lists shared-library names in library directories
// that the changeset adds (absent from the image) or removes.
func libraryNamesChanged(in ScriptInput) []string {
	var out []string
	for _, e := range in.Changes.Entries() {
		dir, base := path.Split(e.Path)
		if !libDirRE.MatchString(strings.TrimSuffix(dir, "/")) || !strings.Contains(base, ".so") {
			continue
		}
		switch e.Kind {
		case layer.Whiteout:
			out = append(out, "-"+e.Path)
		case layer.File, layer.Symlink, layer.Hardlink:
			if _, err := in.FS.Lstat(e.Path); err != nil {
				out = append(out, "+"+e.Path)
			}
		}
	}
	return out
}

var (
	dhSectionRE = regexp.MustCompile(`(?m)^# Automatically added by (dh_[a-z_]+)(?:/[^\n]*)?\n((?s:.*?))^# End automatically added section\n?`)
	// maintscriptRE matches a dpkg-maintscript-helper call of
	// dh_installdeb: command, arguments, prior-version, optional package.
	maintscriptRE = regexp.MustCompile(`^dpkg-maintscript-helper\s+(rm_conffile|mv_conffile|symlink_to_dir|dir_to_symlink)\s+(.*?)\s+--\s+"\$@"$`)
)

// noopTools are debhelper tools whose sections do nothing for an upgrade
// inside an image.
var noopTools = map[string]string{
	"dh_installsystemd":     "systemd unit enablement/restart",
	"dh_installinit":        "init script registration/restart",
	"dh_systemd_enable":     "systemd unit enablement",
	"dh_systemd_start":      "systemd unit restart",
	"dh_installsystemduser": "systemd user unit enablement",
	"dh_installdebconf":     "debconf purge",
}

// classifyScript reports whether script has no effect on an upgrade from
// installed version from (from == "": a new install), and what it
// recognized or, when it has an effect, why it cannot be skipped.
func classifyScript(script, from string) (string, bool) {
	var seen []string
	rest := dhSectionRE.ReplaceAllStringFunc(script, func(sec string) string {
		m := dhSectionRE.FindStringSubmatch(sec)
		tool, body := m[1], m[2]
		if what, ok := noopTools[tool]; ok {
			seen = append(seen, what)
			return ""
		}
		if tool == "dh_installdeb" && maintscriptNoop(body, from) {
			seen = append(seen, "dpkg-maintscript-helper already applied")
			return ""
		}
		return sec
	})
	for l := range strings.SplitSeq(rest, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || l == "set -e" || l == "set -eu" || l == "exit 0" || l == ":":
			continue
		case strings.HasPrefix(l, "dpkg-maintscript-helper ") && maintscriptNoop(l, from):
			seen = append(seen, "dpkg-maintscript-helper already applied")
			continue
		}
		return fmt.Sprintf("runs commands (%q)", truncate(l, 60)), false
	}
	if len(seen) == 0 {
		return "empty", true
	}
	slices.Sort(seen)
	return strings.Join(slices.Compact(seen), "; "), true
}

// maintscriptNoop reports whether every dpkg-maintscript-helper call of
// body is a no-op because the installed version is at or past its
// prior-version (a new install, from == "", has nothing to migrate).
func maintscriptNoop(body, from string) bool {
	n := 0
	for l := range strings.SplitSeq(body, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		m := maintscriptRE.FindStringSubmatch(l)
		if m == nil {
			return false
		}
		args := strings.Fields(m[2])
		// rm_conffile conffile [prior-version [package]]; mv_conffile old
		// new [prior [package]]; symlink_to_dir / dir_to_symlink path
		// target [prior [package]].
		need := 1
		if m[1] != "rm_conffile" {
			need = 2
		}
		if len(args) <= need {
			return false // no prior-version: applies on every upgrade
		}
		prior := strings.ReplaceAll(args[need], `\~`, "~")
		if from != "" && !VersionAtLeast(from, prior) {
			return false
		}
		n++
	}
	return n > 0
}

// VersionAtLeast reports whether Debian version a >= b; malformed versions
// compare as not reached.
func VersionAtLeast(a, b string) bool {
	c, err := version.Deb{}.Compare(a, b)
	return err == nil && c >= 0
}
