package maintscript

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/patch/apt/dpkg"
	"github.com/drydock-project/drydock/internal/patch/backend"
	"github.com/drydock-project/drydock/internal/patch/layer"
)

// scriptRun is one maintainer script invocation dpkg would make.
type scriptRun struct {
	pkg   *dpkg.Installed
	name  string // "preinst", "prerm (old)", ...
	body  []byte
	args  []string
	phase int // 0: before/around unpack, 1: configure
}

// dpkgRuns lists the scripts dpkg runs to upgrade (or install) p, in
// order.
func dpkgRuns(p *dpkg.Installed) []scriptRun {
	if p.From != "" {
		return []scriptRun{
			{p, "prerm (old)", p.OldScripts["prerm"], []string{"upgrade", p.To}, 0},
			{p, "preinst", p.Control["preinst"], []string{"upgrade", p.From}, 0},
			{p, "postrm (old)", p.OldScripts["postrm"], []string{"upgrade", p.To}, 0},
			{p, "postinst", p.Control["postinst"], []string{"configure", p.From}, 1},
		}
	}
	return []scriptRun{
		{p, "preinst", p.Control["preinst"], []string{"install"}, 0},
		{p, "postinst", p.Control["postinst"], []string{"configure"}, 1},
	}
}

// activatedFileTriggers returns the file triggers (by interest path) the
// changeset activates, with the packages interested, from
// var/lib/dpkg/triggers/File.
func activatedFileTriggers(in Input) (map[string][]string, error) {
	data, err := dpkg.ReadOptional(in.FS, "var/lib/dpkg/triggers/File")
	if err != nil || data == nil {
		return nil, err
	}
	out := map[string][]string{}
	entries := in.Changes.Entries()
	for l := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 || !strings.HasPrefix(f[0], "/") {
			continue
		}
		interest := layer.Confine(f[0])
		pkg, _, _ := strings.Cut(f[1], "/")
		for _, e := range entries {
			if e.Path == interest || strings.HasPrefix(e.Path, interest+"/") {
				out[f[0]] = append(out[f[0]], pkg)
				break
			}
		}
	}
	return out, nil
}

// runSandboxed materializes the image with the changeset, runs the
// scripts drydock cannot handle natively (dpkg's order: the unpack-phase
// scripts package by package, then the postinsts, then trigger
// processing by the interested packages' postinst "triggered"), and adds
// what they changed to the changeset.
func runSandboxed(ctx context.Context, in Input, runs []scriptRun, triggers []string) ([]ScriptAction, error) {
	log := in.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	tree, err := in.Sandbox.Open(ctx, in.Image, in.Changes)
	if err != nil {
		return nil, err
	}
	defer tree.Close()
	log.Debug("sandbox: opened", "seconds", time.Since(start).Seconds())
	dpkgVersion := dpkg.InstalledVersion(in.FS, "dpkg", in.Arch)
	var done []ScriptAction
	exec := func(p *dpkg.Installed, script, file string, args []string) error {
		env := []string{
			"DPKG_MAINTSCRIPT_PACKAGE=" + p.Name, "DPKG_MAINTSCRIPT_ARCH=" + p.Arch,
			"DPKG_MAINTSCRIPT_NAME=" + strings.Fields(script)[0], "DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT=1",
			"DPKG_RUNNING_VERSION=" + dpkgVersion, "DPKG_ADMINDIR=/var/lib/dpkg", "DPKG_ROOT=",
			"DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true",
		}
		start := time.Now()
		out, err := tree.Run(ctx, env, append([]string{file}, args...)...)
		log.Info("sandbox: ran maintainer script", "package", p.Name, "script", script, "args", strings.Join(args, " "),
			"seconds", time.Since(start).Seconds(), "output", strings.TrimSpace(string(out)))
		if err != nil {
			return fmt.Errorf("%s %s %s failed: %w\n%s", p.Name, script, strings.Join(args, " "), err, truncate(string(out), 4000))
		}
		done = append(done, ScriptAction{Package: p.Name, Script: script, Action: "sandbox", Detail: "ran: " + strings.Join(args, " ")})
		return nil
	}
	for i, r := range runs {
		file := "/var/lib/dpkg/info/" + dpkg.InfoName(r.pkg.Name, r.pkg.Arch, r.pkg.MultiArch) + "." + strings.Fields(r.name)[0]
		if strings.HasSuffix(r.name, "(old)") {
			// The old version's scripts were replaced in the tree.
			name := fmt.Sprintf("%d-%s.%s", i, r.pkg.Name, strings.Fields(r.name)[0])
			if err := tree.Stage(name, r.body); err != nil {
				return nil, fmt.Errorf("sandbox: %w", err)
			}
			file = backend.StagePath(name)
		}
		if r.phase == 1 {
			continue
		}
		if r.name == "preinst" {
			if file, err = stageControlArea(ctx, tree, r.pkg); err != nil {
				return done, err
			}
		}
		if err := exec(r.pkg, r.name, file, r.args); err != nil {
			return done, err
		}
		if r.name == "preinst" {
			if out, err := tree.Run(ctx, nil, "rm", "-rf", controlArea); err != nil {
				return done, fmt.Errorf("sandbox: removing %s: %w\n%s", controlArea, err, out)
			}
		}
	}
	for _, r := range configureOrder(runs) {
		file := "/var/lib/dpkg/info/" + dpkg.InfoName(r.pkg.Name, r.pkg.Arch, r.pkg.MultiArch) + ".postinst"
		if err := exec(r.pkg, r.name, file, r.args); err != nil {
			return done, err
		}
	}
	// Triggers: activate the ones drydock did not handle, then let the
	// image's own dpkg process every pending trigger (including those the
	// scripts just activated, e.g. ca-certificates' bundle update), as the
	// end of a dpkg run does.
	for _, t := range triggers {
		if _, err := tree.Run(ctx, nil, "dpkg-trigger", "--no-await", t); err != nil {
			return done, fmt.Errorf("activate trigger %s: %w", t, err)
		}
	}
	start = time.Now()
	out, err := tree.Run(ctx, []string{"DEBIAN_FRONTEND=noninteractive"}, "dpkg", "--triggers-only", "--pending")
	log.Info("sandbox: processed triggers", "seconds", time.Since(start).Seconds(), "output", strings.TrimSpace(string(out)))
	if err != nil {
		return done, fmt.Errorf("trigger processing: %w\n%s", err, truncate(string(out), 4000))
	}
	if len(triggers) > 0 || len(out) > 0 {
		done = append(done, ScriptAction{Package: "dpkg", Script: "triggers", Action: "sandbox", Detail: "dpkg --triggers-only --pending"})
	}
	start = time.Now()
	if err := tree.Diff(in.Changes, in.Mtime); err != nil {
		return done, err
	}
	log.Debug("sandbox: recorded the changes", "seconds", time.Since(start).Seconds())
	return done, nil
}

// controlArea is where dpkg puts the control members of the version it
// installs, and runs its preinst from.
const controlArea = "/var/lib/dpkg/tmp.ci"

// stageControlArea writes p's new control members to controlArea in the
// tree, as dpkg does before running the new preinst, and returns the
// preinst's path there. debconf's frontend depends on it: run from
// elsewhere, a preinst's frontend cannot tell the package (it reads it
// from controlArea/control), and the questions its templates register
// get the owner "unknown" in config.dat. The control file holds the
// fields the package's status has for it here (the frontend reads only
// Package); the area is removed after the preinst, as dpkg does.
func stageControlArea(ctx context.Context, tree backend.Tree, p *dpkg.Installed) (string, error) {
	members := map[string][]byte{"control": fmt.Appendf(nil, "Package: %s\nVersion: %s\nArchitecture: %s\n", p.Name, p.To, p.Arch)}
	for name, data := range p.Control {
		members[name] = data
	}
	names := make([]string, 0, len(members))
	for name := range members {
		if !controlMemberName(name) {
			return "", fmt.Errorf("%s: control member %q: not a plain name", p.Name, name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	cmd := "rm -rf " + controlArea + " && mkdir -m 755 " + controlArea
	for _, name := range names {
		staged := "tmp.ci." + name
		if err := tree.Stage(staged, members[name]); err != nil {
			return "", fmt.Errorf("sandbox: %w", err)
		}
		cmd += " && cp " + backend.StagePath(staged) + " " + controlArea + "/" + name
	}
	if out, err := tree.Run(ctx, nil, "sh", "-c", cmd); err != nil {
		return "", fmt.Errorf("sandbox: preparing %s for %s's preinst: %w\n%s", controlArea, p.Name, err, out)
	}
	return controlArea + "/preinst", nil
}

// controlMemberName reports whether name is a plain control member name
// (a .deb's names are input: nothing a shell or a path reads specially).
func controlMemberName(name string) bool {
	if name == "" || name == "." || name == ".." || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '+') {
			return false
		}
	}
	return true
}

// configureOrder returns the postinst runs so that a package configures
// after the packages of the set it depends on, as dpkg does.
func configureOrder(runs []scriptRun) []scriptRun {
	var post []scriptRun
	for _, r := range runs {
		if r.phase == 1 {
			post = append(post, r)
		}
	}
	names := map[string]bool{}
	for _, r := range post {
		names[r.pkg.Name] = true
	}
	var out []scriptRun
	placed := map[string]bool{}
	for len(out) < len(post) {
		progress := false
		for _, r := range post {
			if placed[r.pkg.Name] {
				continue
			}
			ready := true
			for _, d := range r.pkg.Depends {
				if names[d] && !placed[d] && d != r.pkg.Name {
					ready = false
				}
			}
			if ready {
				out = append(out, r)
				placed[r.pkg.Name] = true
				progress = true
			}
		}
		if !progress {
			// A dependency cycle: dpkg breaks it. Walk waiting dependencies
			// from the first waiting package until one repeats: that one is
			// in the cycle, and goes first.
			byName := map[string]scriptRun{}
			var first string
			for _, r := range post {
				if !placed[r.pkg.Name] {
					byName[r.pkg.Name] = r
					if first == "" {
						first = r.pkg.Name
					}
				}
			}
			seen := map[string]bool{}
			cur := first
			for !seen[cur] {
				seen[cur] = true
				next := ""
				for _, d := range byName[cur].pkg.Depends {
					if _, waiting := byName[d]; waiting && d != cur {
						next = d
						break
					}
				}
				if next == "" {
					break
				}
				cur = next
			}
			out = append(out, byName[cur])
			placed[cur] = true
		}
	}
	return out
}
