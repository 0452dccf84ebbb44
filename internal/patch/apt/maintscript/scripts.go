package maintscript

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/patch/apt/dpkg"
	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/patch/cacerts"
	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/patch/ldcache"
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
//     one the image has, so nothing is to be done. Otherwise the cache and
//     the soname links are rebuilt in Go (internal/patch/ldcache), for any
//     architecture; what ldcache cannot reproduce is refused.
//   - Everything else is read statically (see scriptEffect): a script whose
//     branches for dpkg's arguments hold only no-op statements (service
//     actions, "rm -f" of absent files, echo) is skipped, with conditions on
//     "$1"/"$2", versions, files and users decided from the patched image.
//   - ca-certificates' postinst and its update-ca-certificates triggers are
//     reproduced natively (internal/patch/cacerts: the ca-certificates.conf
//     merge, /etc/ssl/certs links, the bundle and OpenSSL hash links), for
//     the script versions it knows.
//   - Distroless images (packages in status.d, no shell, no dpkg) never
//     ran maintainer scripts: their builders only unpack packages. A patch
//     of such an image does the same and records it.
//   - Anything else stops the patch with a clear reason naming the package
//     and script: drydock never leaves an image half-configured silently.

// ScriptAction records how one maintainer script or trigger was handled.
type ScriptAction = backend.ScriptAction

// ScriptError is the refusal of a patch whose maintainer scripts must run
// and cannot.
type ScriptError = backend.ScriptError

// ErrScripts is wrapped by *ScriptError (errors.Is).
var ErrScripts = backend.ErrScripts

// Input is what Run needs: the image, the changeset the
// Unpacker filled, and what it installed.
type Input struct {
	Image      v1.Image
	FS         layer.ImageFS
	Arch       string
	Changes    *layer.Changeset
	Installed  []*dpkg.Installed
	Distroless bool
	Mtime      time.Time
	TempDir    string
	// Platform is the image's platform (the sandbox runs only what this
	// machine can execute).
	Platform v1.Platform
	// Sandbox runs the scripts drydock cannot handle natively, as its
	// mode allows; nil runs none (mode never).
	Sandbox backend.Sandbox
	// Log receives the output of sandboxed scripts.
	Log *slog.Logger
}

// Run handles the maintainer scripts and triggers of the installed
// packages (see the policy above), adding what they change to the
// changeset, and returns what it did for each. An unhandled script is a
// *ScriptError listing all of them.
func Run(ctx context.Context, in Input) ([]ScriptAction, error) {
	var done, unhandled []ScriptAction
	if in.Distroless {
		for _, p := range in.Installed {
			for _, s := range dpkg.ScriptNames {
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
	env := newShEnv(in)
	for _, p := range in.Installed {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, r := range dpkgRuns(p) {
			if r.body == nil {
				continue
			}
			if h := nativeScripts[p.Name+" "+r.name]; h != nil {
				detail, err := h(ctx, in, r)
				if err == nil {
					done = append(done, ScriptAction{Package: p.Name, Script: r.name, Action: "native", Detail: detail})
					continue
				}
				in.logger().Info("patch: native handler declined, judging the script itself", "package", p.Name, "script", r.name, "reason", err)
			}
			detail, ok := classifyScript(string(r.body), p.From, r.args, env)
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
	for _, t := range slices.Sorted(maps.Keys(triggers)) {
		pkgs := strings.Join(triggers[t], ", ")
		switch t {
		case "ldconfig":
			changed := libraryNamesChanged(in)
			if len(changed) == 0 {
				done = append(done, ScriptAction{Package: pkgs, Script: "trigger ldconfig", Action: "native",
					Detail: "no library name added or removed: /etc/ld.so.cache stays valid"})
				continue
			}
			detail, err := rebuildLdCache(ctx, in)
			if err == nil {
				done = append(done, ScriptAction{Package: pkgs, Script: "trigger ldconfig", Action: "native", Detail: detail})
				continue
			}
			unhandled = append(unhandled, ScriptAction{Package: pkgs, Script: "trigger ldconfig",
				Detail: "the patch adds or removes libraries (" + strings.Join(changed, ", ") + ") and /etc/ld.so.cache cannot be rebuilt natively: " + err.Error()})
		case "update-ca-certificates", "update-ca-certificates-fresh":
			detail, err := updateCACertificates(in, cacerts.Options{Fresh: t == "update-ca-certificates-fresh"})
			if err == nil {
				done = append(done, ScriptAction{Package: pkgs, Script: "trigger " + t, Action: "native", Detail: detail})
				continue
			}
			unhandled = append(unhandled, ScriptAction{Package: pkgs, Script: "trigger " + t, Detail: err.Error()})
		default:
			unhandled = append(unhandled, ScriptAction{Package: pkgs, Script: "trigger " + t,
				Detail: "trigger processing is not handled natively"})
		}
		pendingTriggers = append(pendingTriggers, t)
	}
	if len(unhandled) == 0 && !in.always() {
		return done, nil
	}
	if in.always() {
		// Every script drydock does not reproduce natively runs, also
		// those it judged to do nothing.
		sandboxed = sandboxed[:0]
		kept := done[:0]
		for _, p := range in.Installed {
			for _, r := range dpkgRuns(p) {
				if r.body == nil || slices.ContainsFunc(done, func(a ScriptAction) bool {
					return a.Package == p.Name && a.Script == r.name && a.Action == "native"
				}) {
					continue
				}
				sandboxed = append(sandboxed, r)
			}
		}
		for _, a := range done {
			if a.Action == "native" {
				kept = append(kept, a)
			}
		}
		done = kept
	}
	if len(sandboxed) == 0 && len(pendingTriggers) == 0 {
		return done, nil
	}
	if in.Sandbox == nil || in.Sandbox.Mode() == backend.SandboxNever {
		return done, &ScriptError{Unhandled: unhandled}
	}
	if err := in.Sandbox.Available(in.Platform); err != nil {
		return done, &ScriptError{Unhandled: unhandled, Sandbox: err}
	}
	ran, err := runSandboxed(ctx, in, sandboxed, pendingTriggers)
	if errors.Is(err, backend.ErrSandboxUnavailable) {
		return done, &ScriptError{Unhandled: unhandled, Sandbox: err}
	}
	if err != nil {
		return done, err
	}
	return append(done, ran...), nil
}

// nativeScripts handle known maintainer scripts in Go, by "package
// script": what the script does is reproduced exactly (its version is
// checked by the handler), or the handler declines and the script is
// judged like any other.
var nativeScripts = map[string]func(ctx context.Context, in Input, r scriptRun) (string, error){
	"ca-certificates postinst": func(_ context.Context, in Input, r scriptRun) (string, error) {
		if len(r.args) == 0 || r.args[0] != "configure" {
			return "", fmt.Errorf("not a configure run")
		}
		return updateCACertificates(in, cacerts.Options{Configure: true})
	},
}

// updateCACertificates applies what ca-certificates' postinst and
// update-ca-certificates would change (internal/patch/cacerts).
func updateCACertificates(in Input, opts cacerts.Options) (string, error) {
	changes, err := cacerts.Update(layer.NewOverlay(in.FS, in.Changes), opts)
	if err != nil {
		return "", err
	}
	view := layer.NewOverlay(in.FS, in.Changes)
	for _, c := range changes {
		p, err := view.Resolve(layer.Confine(c.Path))
		if err != nil {
			return "", err
		}
		switch {
		case c.Remove:
			in.Changes.Remove(p)
			if _, lerr := in.FS.Lstat(p); lerr == nil {
				err = in.Changes.AddWhiteout(p, in.Mtime)
			}
		case c.Symlink != "":
			err = in.Changes.AddSymlink(p, c.Symlink, 0, 0, in.Mtime)
		case c.Mode.IsDir():
			uid, gid := 0, 0
			if ie, err := in.FS.Entry(p); err == nil {
				uid, gid = ie.UID, ie.GID
			}
			err = in.Changes.AddDir(p, c.Mode, uid, gid, in.Mtime)
		default:
			_, err = in.Changes.AddBytes(p, c.Mode, 0, 0, in.Mtime, c.Data)
		}
		if err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("update-ca-certificates reproduced natively (%d paths changed)", len(changes)), nil
}

// always reports mode always: every script runs in the sandbox.
func (in Input) always() bool {
	return in.Sandbox != nil && in.Sandbox.Mode() == backend.SandboxAlways
}

func (in Input) logger() *slog.Logger {
	if in.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return in.Log
}

// rebuildLdCache writes the /etc/ld.so.cache and soname links ldconfig
// would, computed from the patched image (internal/patch/ldcache).
func rebuildLdCache(ctx context.Context, in Input) (string, error) {
	var links []ldcache.Link
	ov := layer.NewOverlay(in.FS, in.Changes)
	data, err := ldcache.Build(ov, in.Arch, ldcache.WithContext(ctx), ldcache.WithLinkReport(func(l ldcache.Link) { links = append(links, l) }))
	if err != nil {
		return "", err
	}
	for _, l := range links {
		p, err := layer.NewOverlay(in.FS, in.Changes).Resolve(layer.Confine(path.Join(l.Dir, l.Name)))
		if err != nil {
			return "", err
		}
		if err := in.Changes.AddSymlink(p, l.Target, 0, 0, in.Mtime); err != nil {
			return "", err
		}
	}
	cur, err := dpkg.ReadOptional(ov, "etc/ld.so.cache")
	if err != nil {
		return "", err
	}
	if !bytes.Equal(cur, data) {
		if _, err := in.Changes.AddBytes("etc/ld.so.cache", 0o644, 0, 0, in.Mtime, data); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("rebuilt /etc/ld.so.cache natively (%d soname links)", len(links)), nil
}

// parseTriggerActivations returns the triggers a package's triggers
// control file activates.
func parseTriggerActivations(data []byte) []string {
	var out []string
	for l := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "activate" || f[0] == "activate-noawait" || f[0] == "activate-await") {
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
func libraryNamesChanged(in Input) []string {
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
func classifyScript(script, from string, args []string, env *shEnv) (string, bool) {
	var seen []string
	rest := dhSectionRE.ReplaceAllStringFunc(script, func(sec string) string {
		m := dhSectionRE.FindStringSubmatch(sec)
		tool, body := m[1], m[2]
		// Service hooks do nothing for an upgrade; on a fresh install they
		// enable the service (symlinks), which is an effect.
		if what, ok := noopTools[tool]; ok && (from != "" || tool == "dh_installdebconf") {
			seen = append(seen, what)
			return ""
		}
		if tool == "dh_installdeb" && maintscriptNoop(body, from) {
			seen = append(seen, "dpkg-maintscript-helper already applied")
			return ""
		}
		return sec
	})
	// dpkg-maintscript-helper lines outside debhelper sections.
	var kept []string
	for l := range strings.SplitSeq(rest, "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "dpkg-maintscript-helper ") && maintscriptNoop(t, from) {
			seen = append(seen, "dpkg-maintscript-helper already applied")
			continue
		}
		kept = append(kept, l)
	}
	if err := scriptEffect(strings.Join(kept, "\n"), args, env); err != nil {
		return err.Error(), false
	}
	if len(args) > 0 && (strings.Contains(rest, "case ") || strings.Contains(rest, "if ")) {
		seen = append(seen, "only branches for other actions than "+args[0])
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
		// The helper acts when upgrading from a version at or before
		// prior-version (dpkg --compare-versions "$2" le-nl prior).
		if acts, known := compareVersionsOp(from, "le-nl", prior); !known || acts {
			return false
		}
		n++
	}
	return n > 0
}

// truncate shortens s (script output in errors) to n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
