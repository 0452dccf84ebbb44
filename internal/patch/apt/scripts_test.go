package apt

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/rootfs"
)

// Excerpts of real maintainer scripts (Debian bookworm packages, built by
// debhelper 13.11.4).

// scNginxCommonPrerm is nginx-common 1.22.1-9+deb12u11's prerm, whole.
const scNginxCommonPrerm = `#!/bin/sh
set -e
# Automatically added by dh_installsystemd/13.11.4
if [ -z "${DPKG_ROOT:-}" ] && [ "$1" = remove ] && [ -d /run/systemd/system ] ; then
	deb-systemd-invoke stop 'nginx.service' >/dev/null || true
fi
# End automatically added section
`

// scDhInstallinitPostinst is nginx-common's dh_installinit postinst section.
const scDhInstallinitPostinst = `# Automatically added by dh_installinit/13.11.4
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	if [ -x "/etc/init.d/nginx" ]; then
		update-rc.d nginx defaults >/dev/null || exit 1
	fi
fi
# End automatically added section
`

// scDhInstallsystemdPostinst is nginx-common's two dh_installsystemd
// postinst sections.
const scDhInstallsystemdPostinst = `# Automatically added by dh_installsystemd/13.11.4
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	# The following line should be removed in trixie or trixie+1
	deb-systemd-helper unmask 'nginx.service' >/dev/null || true

	# was-enabled defaults to true, so new installations run enable.
	if deb-systemd-helper --quiet was-enabled 'nginx.service'; then
		# Enables the unit on first installation, creates new
		# symlinks on upgrades if the unit file has changed.
		deb-systemd-helper enable 'nginx.service' >/dev/null || true
	else
		# Update the statefile to add new symlinks (if any), which need to be
		# cleaned up on purge. Also remove old symlinks.
		deb-systemd-helper update-state 'nginx.service' >/dev/null || true
	fi
fi
# End automatically added section
# Automatically added by dh_installsystemd/13.11.4
if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			_dh_action=restart
		else
			_dh_action=start
		fi
		deb-systemd-invoke $_dh_action 'nginx.service' >/dev/null || true
	fi
fi
# End automatically added section
`

// scDhInstalldebconfPostrm is nginx-common's dh_installdebconf postrm
// section.
const scDhInstalldebconfPostrm = `# Automatically added by dh_installdebconf/13.11.4
if [ "$1" = purge ] && [ -e /usr/share/debconf/confmodule ]; then
	. /usr/share/debconf/confmodule
	db_purge
fi
# End automatically added section
`

// scNginxCommonPostrm is nginx-common's postrm: a custom purge case before
// debhelper's sections.
const scNginxCommonPostrm = `#!/bin/sh
set -e

case "$1" in
  purge)
    rm -rf /var/lib/nginx /var/log/nginx /etc/nginx
    ;;

  upgrade|remove|failed-upgrade|abort-install|abort-upgrade|disappear)
    ;;

  *)
    echo "postrm called with unknown argument \` + "`" + `$1'" >&2
    exit 1
    ;;
esac

` + scDhInstalldebconfPostrm + `

exit 0
`

// scAptMaintscript is apt 2.6.2's dh_installdeb section (preinst, postinst,
// prerm and postrm alike).
const scAptMaintscript = `# Automatically added by dh_installdeb/13.11.4
dpkg-maintscript-helper rm_conffile /etc/apt/apt.conf.d/20changelog 1.2.4\~ -- "$@"
dpkg-maintscript-helper rm_conffile /etc/cron.daily/apt 1.2.10\~ -- "$@"
dpkg-maintscript-helper rm_conffile /etc/kernel/postinst.d/apt-auto-removal 2.4.5\~ -- "$@"
# End automatically added section
`

// scPerlBasePostinst is perl-base 5.36.0-7+deb12u4's postinst, whole.
const scPerlBasePostinst = `#!/bin/sh
set -e
# Automatically added by dh_installdeb/13.11.4
dpkg-maintscript-helper symlink_to_dir /usr/share/doc/perl-base perl 5.30.0-1 perl-base -- "$@"
# End automatically added section
`

// scTzdataPreinst is the beginning of tzdata 2026f-0+deb12u1's preinst.
const scTzdataPreinst = `#!/bin/sh
set -e
# Automatically added by dh_installdeb/13.11.4
dpkg-maintscript-helper dir_to_symlink /usr/share/zoneinfo/posix/Africa ../Africa 2022g-1\~ -- "$@"
dpkg-maintscript-helper dir_to_symlink /usr/share/zoneinfo/posix/America ../America 2022g-1\~ -- "$@"
dpkg-maintscript-helper dir_to_symlink /usr/share/zoneinfo/posix/US ../US 2022g-1\~ -- "$@"
# End automatically added section
`

// scLoginMaintscript is login 1:4.8.1-1+deb11u1's dh_installdeb section
// (an epoch in the prior-version).
const scLoginMaintscript = `# Automatically added by dh_installdeb/13.3.4
dpkg-maintscript-helper rm_conffile /etc/securetty 1:4.7-1\~ -- "$@"
# End automatically added section
`

// scOpensslPostinst is openssl 3.0.22-1~deb12u2's postinst, whole.
const scOpensslPostinst = `#!/bin/sh -e

if [ ! -e /usr/lib/ssl ]
then
  echo Linking /usr/lib/ssl to /etc/ssl
  ln -sf /etc/ssl /usr/lib/ssl
fi


`

// scLibssl3Triggers is libssl3's triggers control file.
const scLibssl3Triggers = `# Triggers added by dh_makeshlibs/13.11.4
activate-noawait ldconfig
`

// configureArgs are the arguments dpkg passes a postinst configuring an
// upgrade from the version from (a new install when from is "").
func configureArgs(from string) []string {
	if from == "" {
		return []string{"configure"}
	}
	return []string{"configure", from}
}

// classify runs classifyScript as for a postinst, or with args when given.
func classify(script, from string, args ...string) (string, bool) {
	if len(args) == 0 {
		args = configureArgs(from)
	}
	return classifyScript(script, from, args, nil)
}

func TestClassifyScript(t *testing.T) {
	noop := []struct {
		name, script, from, detail string
		args                       []string
	}{
		{"empty", "", "1.0", "empty", nil},
		{"shebang and set -e", "#!/bin/sh\nset -e\n", "1.0", "empty", nil},
		{"set -eu, exit 0, colon", "#!/bin/sh\nset -eu\n:\n\n  exit 0\n", "1.0", "empty", nil},
		{"comments only", "#!/bin/sh\n# nothing to do\n\t# indented comment\n", "", "empty", nil},
		{"nginx-common prerm", scNginxCommonPrerm, "1.22.1-9+deb12u9", "systemd unit enablement/restart", nil},
		{"dh_installsystemd sections", "#!/bin/sh\nset -e\n" + scDhInstallsystemdPostinst + "\n\nexit 0\n", "1.22.1-9+deb12u9", "systemd unit enablement/restart", nil},
		{"dh_installinit section", "#!/bin/sh\nset -e\n" + scDhInstallinitPostinst, "1.0", "init script registration/restart", nil},
		{"dh_installinit and dh_installsystemd", "#!/bin/sh\nset -e\n" + scDhInstallinitPostinst + scDhInstallsystemdPostinst + "\n\nexit 0\n", "1.0",
			"init script registration/restart; systemd unit enablement/restart", nil},
		{"dh_installdebconf purge section", "#!/bin/sh\nset -e\n" + scDhInstalldebconfPostrm, "1.0", "debconf purge", nil},
		{"dh_systemd_enable and dh_systemd_start", "# Automatically added by dh_systemd_enable/12.1\ndeb-systemd-helper enable x.service\n# End automatically added section\n" +
			"# Automatically added by dh_systemd_start/12.1\ndeb-systemd-invoke restart x.service\n# End automatically added section\n", "1.0",
			"systemd unit enablement; systemd unit restart", nil},
		{"dh_installsystemduser", "# Automatically added by dh_installsystemduser/13.11.4\ndeb-systemd-helper --user enable x.service\n# End automatically added section\n", "1.0",
			"systemd user unit enablement", nil},
		{"section header without version", "# Automatically added by dh_installinit\nupdate-rc.d x defaults\n# End automatically added section", "1.0",
			"init script registration/restart", nil},
		{"empty dh_installdeb section", "# Automatically added by dh_installdeb/13.11.4\n# End automatically added section\n", "2.0", "empty", nil},
		{"section without final newline", "set -e\n" + strings.TrimSuffix(scDhInstallinitPostinst, "\n"), "1.0", "init script registration/restart", nil},
		{"apt rm_conffile, installed past every prior-version", "#!/bin/sh\nset -e\n" + scAptMaintscript, "2.6.1",
			"dpkg-maintscript-helper already applied", nil},
		{"apt rm_conffile, installed just past the escaped tilde", scAptMaintscript, "2.4.5~rc1", "dpkg-maintscript-helper already applied", nil},
		{"rm_conffile 1.2.4\\~ reached by 1.2.4", "# Automatically added by dh_installdeb/13.11.4\ndpkg-maintscript-helper rm_conffile /etc/x 1.2.4\\~ -- \"$@\"\n# End automatically added section\n", "1.2.4",
			"dpkg-maintscript-helper already applied", nil},
		{"apt rm_conffile, new install", scAptMaintscript, "", "dpkg-maintscript-helper already applied", nil},
		{"perl-base symlink_to_dir with package", scPerlBasePostinst, "5.36.0-7+deb12u3", "dpkg-maintscript-helper already applied", nil},
		{"tzdata dir_to_symlink", scTzdataPreinst, "2025b-0+deb12u1", "dpkg-maintscript-helper already applied", nil},
		{"login rm_conffile with epoch", scLoginMaintscript, "1:4.13+dfsg1-1+deb12u1", "dpkg-maintscript-helper already applied", nil},
		{"mv_conffile with prior-version", "dpkg-maintscript-helper mv_conffile /etc/a /etc/b 1.0-1~ pkg -- \"$@\"\n", "1.0-1", "dpkg-maintscript-helper already applied", nil},
		{"maintscript line outside a section", "set -e\ndpkg-maintscript-helper rm_conffile /etc/x 1.0~ -- \"$@\"\n", "2.0", "dpkg-maintscript-helper already applied", nil},
		{"nginx-common postrm on upgrade", scNginxCommonPostrm, "1.22.1-9+deb12u9", "debconf purge", []string{"upgrade", "1.22.1-9+deb12u11"}},
		{"case on $1 with other actions only", "case \"$1\" in\n  purge)\n    rm -rf /var/lib/x\n    ;;\n  remove) rm -f /y ;;\n  *) ;;\nesac\n", "1.0", "only branches for other actions than configure", nil},
		{"fresh-install branch on upgrade", "#!/bin/sh\nset -e\nif [ -z \"$2\" ]; then\n\tadduser --system foo\nfi\n", "1.0", "only branches for other actions than configure", nil},
		{"compare-versions not reached", "if dpkg --compare-versions \"$2\" lt-nl 2.0; then\n\tmigrate-old-config\nfi\n", "2.1", "only branches for other actions than configure", nil},
		{"maintscript and systemd", scPerlBasePostinst + scDhInstallsystemdPostinst, "5.36.0-7",
			"dpkg-maintscript-helper already applied; systemd unit enablement/restart", nil},
	}
	for _, tt := range noop {
		t.Run("noop/"+tt.name, func(t *testing.T) {
			detail, ok := classify(tt.script, tt.from, tt.args...)
			if !ok {
				t.Fatalf("classifyScript(from %q) = %q, false; want a no-op", tt.from, detail)
			}
			if !strings.Contains(detail, tt.detail) {
				t.Errorf("detail %q, want it to contain %q", detail, tt.detail)
			}
		})
	}
	effect := []struct {
		name, script, from, detail string
		args                       []string
	}{
		{"custom command", "#!/bin/sh\nset -e\nldconfig\n", "1.0", "ldconfig", nil},
		{"openssl postinst", scOpensslPostinst, "3.0.20-1~deb12u2", "ln -sf /etc/ssl /usr/lib/ssl", nil},
		{"nginx-common postrm", scNginxCommonPostrm, "1.22.1-9+deb12u9", `runs "exit 1"`, nil},
		{"apt rm_conffile, prior-version above installed", scAptMaintscript, "2.4.4", "dpkg-maintscript-helper", nil},
		{"apt rm_conffile, far older", scAptMaintscript, "1.0.9.8.4", "dpkg-maintscript-helper", nil},
		{"perl-base symlink_to_dir, older installed", scPerlBasePostinst, "5.28.1-6+deb10u1", "dpkg-maintscript-helper", nil},
		{"tzdata dir_to_symlink, older installed", scTzdataPreinst, "2021a-1+deb11u10", "dpkg-maintscript-helper", nil},
		{"login rm_conffile, epoch not reached", scLoginMaintscript, "1:4.5-1.1", "dpkg-maintscript-helper", nil},
		{"rm_conffile without prior-version", "# Automatically added by dh_installdeb/13.11.4\ndpkg-maintscript-helper rm_conffile /etc/x -- \"$@\"\n# End automatically added section\n", "9.9", "dpkg-maintscript-helper", nil},
		{"mv_conffile without prior-version", "dpkg-maintscript-helper mv_conffile /etc/a /etc/b -- \"$@\"\n", "9.9", "dpkg-maintscript-helper", nil},
		{"symlink_to_dir without prior-version", "dpkg-maintscript-helper symlink_to_dir /usr/share/doc/x y -- \"$@\"\n", "9.9", "dpkg-maintscript-helper", nil},
		{"maintscript with malformed installed version", scAptMaintscript, "not a version!", "dpkg-maintscript-helper", nil},
		{"unknown maintscript command", "dpkg-maintscript-helper supports rm_conffile\n", "1.0", "dpkg-maintscript-helper supports", nil},
		{"dh_installdeb section with other commands", "# Automatically added by dh_installdeb/13.11.4\ndpkg-maintscript-helper rm_conffile /etc/x 1.0~ -- \"$@\"\nrm -f /etc/y\n# End automatically added section\n", "2.0", "rm -f /etc/y", nil},
		{"unknown debhelper tool", "#!/bin/sh\nset -e\n# Automatically added by dh_installmenu/13.11.4\nif [ \"$1\" = \"configure\" ] && [ -x \"$(command -v update-menus)\" ]; then\n\tupdate-menus\nfi\n# End automatically added section\n", "1.0", "update-menus", nil},
		{"no-op section then a custom line", "#!/bin/sh\nset -e\n" + scDhInstallsystemdPostinst + "chown www-data /var/log/nginx\n", "1.0", "chown www-data /var/log/nginx", nil},
		{"custom line then a no-op section", "#!/bin/sh\nupdate-alternatives --install /usr/bin/x x /usr/bin/y 10\n" + scDhInstallinitPostinst, "1.0", "update-alternatives --install", nil},
		{"section not closed", "# Automatically added by dh_installsystemd/13.11.4\ndeb-systemd-helper enable x\n", "1.0", "deb-systemd-helper enable x", nil},
		{"nginx-common postrm on purge", scNginxCommonPostrm, "", "rm -rf /var/lib/nginx", []string{"purge"}},
		{"new install branch", "#!/bin/sh\nset -e\nif [ -z \"$2\" ]; then\n\tadduser --system foo\nfi\n", "", "adduser --system foo", nil},
		{"unknown condition", "if [ -d /run/systemd/system ]; then\n\tsystemctl daemon-reload\nfi\n", "1.0", "systemctl daemon-reload", nil},
		{"compare-versions reached", "if dpkg --compare-versions \"$2\" lt 2.0; then\n\tmigrate-old-config\nfi\n", "1.5", "migrate-old-config", nil},
		{"function call", "f() {\n\t:\n}\nf\n", "1.0", "f", nil},
	}
	for _, tt := range effect {
		t.Run("effect/"+tt.name, func(t *testing.T) {
			detail, ok := classify(tt.script, tt.from, tt.args...)
			if ok {
				t.Fatalf("classifyScript(from %q) = %q, true; want it to have an effect", tt.from, detail)
			}
			if !strings.Contains(detail, tt.detail) {
				t.Errorf("detail %q, want it to contain %q", detail, tt.detail)
			}
		})
	}
}

func TestClassifyScriptTruncatesDetail(t *testing.T) {
	line := "touch /" + strings.Repeat("x", 200)
	detail, ok := classify(line, "1.0")
	if ok || !strings.Contains(detail, "...") || len(detail) > 100 {
		t.Errorf("classifyScript(long line) = %q, %v", detail, ok)
	}
}

// TestRegression_MaintscriptPriorVersionEqual: dpkg-maintscript-helper acts when
// the version being upgraded from is lower than OR EQUAL to the
// prior-version (its checks are `dpkg --compare-versions "$2" le-nl
// "$LASTVERSION"`), so a call is a no-op only when the installed version is
// strictly greater. maintscriptNoop uses VersionAtLeast (>=), so an image
// with exactly the prior-version installed (perl-base 5.30.0-1 here, whose
// prior-version has no "~") is wrongly treated as already migrated and the
// symlink_to_dir / rm_conffile step is skipped.
func TestRegression_MaintscriptPriorVersionEqual(t *testing.T) {
	for _, tt := range []struct{ script, from string }{
		{scPerlBasePostinst, "5.30.0-1"},
		{"dpkg-maintscript-helper symlink_to_dir /usr/share/doc/perl-base perl 5.30.0-1 perl-base -- \"$@\"\n", "5.30.0-1"},
		{"dpkg-maintscript-helper rm_conffile /etc/x 1.2.4\\~ -- \"$@\"\n", "1.2.4~"},
	} {
		if detail, ok := classify(tt.script, tt.from); ok {
			t.Errorf("classifyScript(%q, from %q) = %q, true; want false (dpkg-maintscript-helper acts when from <= prior-version)",
				tt.script, tt.from, detail)
		}
		if !strings.HasPrefix(tt.script, "#") && maintscriptNoop(tt.script, tt.from) {
			t.Errorf("maintscriptNoop(%q, from %q) = true, want false", tt.script, tt.from)
		}
	}
}

func TestMaintscriptNoop(t *testing.T) {
	const rm = `dpkg-maintscript-helper rm_conffile /etc/x 1.2.4\~ -- "$@"`
	const rmPkg = `dpkg-maintscript-helper rm_conffile /etc/x 1.2.4\~ pkg -- "$@"`
	const mv = `dpkg-maintscript-helper mv_conffile /etc/a /etc/b 2.0-1 -- "$@"`
	const d2s = `dpkg-maintscript-helper dir_to_symlink /usr/share/doc/a b 3:1.0 -- "$@"`
	tests := []struct {
		name, body, from string
		want             bool
	}{
		{"rm reached", rm, "1.2.5", true},
		{"rm reached through the tilde", rm, "1.2.4", true},
		{"rm not reached", rm, "1.2.3", false},
		{"rm with package", rmPkg, "1.3", true},
		{"mv reached", mv, "2.0-2", true},
		{"mv not reached", mv, "1.9", false},
		{"epoch not reached", d2s, "2:9.9", false},
		{"epoch reached", d2s, "3:1.1", true},
		{"new install", rm + "\n" + mv + "\n" + d2s, "", true},
		{"all reached", rm + "\n" + mv, "2.1", true},
		{"one not reached", rm + "\n" + mv, "1.5", false},
		{"comments and blanks", "# a comment\n\n  " + rm + "  \n", "2", true},
		{"only comments", "# nothing\n\n", "2", false},
		{"empty", "", "2", false},
		{"other command", rm + "\necho hi", "2", false},
		{"no prior-version", `dpkg-maintscript-helper rm_conffile /etc/x -- "$@"`, "2", false},
		{"no prior-version, new install", `dpkg-maintscript-helper rm_conffile /etc/x -- "$@"`, "", false},
		{"mv without prior-version", `dpkg-maintscript-helper mv_conffile /etc/a /etc/b -- "$@"`, "2", false},
		{"missing \"$@\"", `dpkg-maintscript-helper rm_conffile /etc/x 1.0 --`, "2", false},
		{"extra after \"$@\"", `dpkg-maintscript-helper rm_conffile /etc/x 1.0 -- "$@" || true`, "2", false},
		{"malformed prior-version", `dpkg-maintscript-helper rm_conffile /etc/x 1.0! -- "$@"`, "2", false},
		{"tabs between arguments", "dpkg-maintscript-helper\trm_conffile\t/etc/x\t1.0~\t--\t\"$@\"", "2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := maintscriptNoop(tt.body, tt.from); got != tt.want {
				t.Errorf("maintscriptNoop(%q, %q) = %v, want %v", tt.body, tt.from, got, tt.want)
			}
		})
	}
}

func TestParseTriggerActivations(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"nil", "", nil},
		{"libssl3", scLibssl3Triggers, []string{"ldconfig"}},
		{"activate", "activate update-sgmlcatalog\n", []string{"update-sgmlcatalog"}},
		{"several", "activate-noawait ldconfig\nactivate a\n  activate-noawait   b  \n", []string{"ldconfig", "a", "b"}},
		{"interests ignored", "interest /usr/share/man\ninterest-noawait ldconfig\ninterest-await x\n", nil},
		{"junk ignored", "activate\nactivate-noawait\n# activate x\nfoo bar\n", nil},
		{"CRLF", "activate-noawait ldconfig\r\n", []string{"ldconfig"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseTriggerActivations([]byte(tt.in)); !slices.Equal(got, tt.want) {
				t.Errorf("parseTriggerActivations(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestRegression_TriggerActivateAwait: deb-triggers(5) has three activation
// directives, "activate", "activate-await" and "activate-noawait".
// parseTriggerActivations knows only the first and last, so a package
// whose triggers file says "activate-await NAME" (Debian's xml-core does:
// "activate-await update-sgmlcatalog") has its trigger silently dropped:
// RunScripts neither handles it nor reports it as unhandled.
func TestRegression_TriggerActivateAwait(t *testing.T) {
	in := "activate-await update-sgmlcatalog\n"
	got := parseTriggerActivations([]byte(in))
	if want := []string{"update-sgmlcatalog"}; !slices.Equal(got, want) {
		t.Errorf("parseTriggerActivations(%q) = %q, want %q", in, got, want)
	}
}

// memFS is an in-memory ImageFS: regular files (with implied directories)
// and symbolic links.
type memFS struct {
	files map[string]string
	links map[string]string // path -> target
}

func (m memFS) mapFS() fstest.MapFS {
	out := fstest.MapFS{}
	for p, data := range m.files {
		out[p] = &fstest.MapFile{Data: []byte(data), Mode: 0o644}
	}
	for p := range m.links {
		if dir := path.Dir(p); dir != "." {
			out[dir] = &fstest.MapFile{Mode: fs.ModeDir | 0o755}
		}
	}
	return out
}

func (m memFS) Open(name string) (fs.File, error) {
	if _, ok := m.links[name]; ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("memFS does not follow links")}
	}
	return m.mapFS().Open(name)
}

type linkInfo struct {
	name string
	size int64
}

func (l linkInfo) Name() string       { return l.name }
func (l linkInfo) Size() int64        { return l.size }
func (l linkInfo) Mode() fs.FileMode  { return fs.ModeSymlink | 0o777 }
func (l linkInfo) ModTime() time.Time { return time.Time{} }
func (l linkInfo) IsDir() bool        { return false }
func (l linkInfo) Sys() any           { return nil }

func (m memFS) Lstat(name string) (fs.FileInfo, error) {
	if t, ok := m.links[name]; ok {
		return linkInfo{name: path.Base(name), size: int64(len(t))}, nil
	}
	return fs.Stat(m.mapFS(), name)
}

func (m memFS) ReadLink(name string) (string, error) {
	if t, ok := m.links[name]; ok {
		return t, nil
	}
	return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
}

func (m memFS) Entry(name string) (rootfs.Entry, error) {
	fi, err := m.Lstat(name)
	if err != nil {
		return rootfs.Entry{}, err
	}
	return rootfs.Entry{Path: name, Mode: fi.Mode(), Size: fi.Size(), Linkname: m.links[name], Layer: 0}, nil
}

var _ ImageFS = memFS{}

func newChangeset(t *testing.T) *layer.Changeset {
	t.Helper()
	cs, err := layer.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

var testMtime = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func addFile(t *testing.T, cs *layer.Changeset, p string) {
	t.Helper()
	if _, err := cs.AddBytes(p, 0o644, 0, 0, testMtime, []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestMemFS(t *testing.T) {
	m := memFS{files: map[string]string{"usr/lib/a.so": "x"}, links: map[string]string{"lib": "usr/lib"}}
	if fi, err := m.Lstat("lib"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(lib) = %v, %v", fi, err)
	}
	if fi, err := m.Lstat("usr/lib"); err != nil || !fi.IsDir() {
		t.Errorf("Lstat(usr/lib) = %v, %v", fi, err)
	}
	if e, err := m.Entry("usr/lib/a.so"); err != nil || !e.Mode.IsRegular() || e.Size != 1 {
		t.Errorf("Entry = %+v, %v", e, err)
	}
	if _, err := m.Lstat("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lstat(nope) error %v", err)
	}
}

func TestLibraryNamesChanged(t *testing.T) {
	img := memFS{files: map[string]string{
		"usr/lib/x86_64-linux-gnu/libssl.so.3":    "old",
		"usr/lib/x86_64-linux-gnu/libcrypto.so.3": "old",
		"usr/lib/x86_64-linux-gnu/libold.so.1":    "old",
		"lib/x86_64-linux-gnu/libz.so.1":          "old",
		"usr/lib/libfoo.so":                       "old",
	}}
	cs := newChangeset(t)
	// Replaced in place: no name change.
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/libssl.so.3")
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/libcrypto.so.3")
	addFile(t, cs, "usr/lib/libfoo.so")
	// Added.
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/libnew.so.2")
	if err := cs.AddSymlink("usr/lib/x86_64-linux-gnu/libnew.so", "libnew.so.2", 0, 0, testMtime); err != nil {
		t.Fatal(err)
	}
	addFile(t, cs, "usr/local/lib64/libloc.so.0")
	addFile(t, cs, "lib32/libthirtytwo.so.6")
	if err := cs.AddHardlink("usr/lib/aarch64-linux-gnu/libhl.so.1", "usr/lib/x86_64-linux-gnu/libnew.so.2"); err != nil {
		t.Fatal(err)
	}
	// Removed.
	if err := cs.AddWhiteout("usr/lib/x86_64-linux-gnu/libold.so.1", testMtime); err != nil {
		t.Fatal(err)
	}
	// Not in a library directory, or not a library, or a directory.
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/engines-3/afalg.so")
	addFile(t, cs, "usr/share/doc/libssl3/libnew.so.txt-not-in-libdir")
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/pkgconfig.pc")
	addFile(t, cs, "usr/libexec/libx.so.1")
	addFile(t, cs, "opt/lib/liby.so.1")
	if err := cs.AddDir("usr/lib/x86_64-linux-gnu/libdir.so.d", 0o755, 0, 0, testMtime); err != nil {
		t.Fatal(err)
	}
	if err := cs.AddWhiteout("etc/libgone.so.conf", testMtime); err != nil {
		t.Fatal(err)
	}
	got := libraryNamesChanged(ScriptInput{FS: img, Changes: cs})
	want := []string{
		"+lib32/libthirtytwo.so.6",
		"+usr/lib/aarch64-linux-gnu/libhl.so.1",
		"+usr/lib/x86_64-linux-gnu/libnew.so",
		"+usr/lib/x86_64-linux-gnu/libnew.so.2",
		"-usr/lib/x86_64-linux-gnu/libold.so.1",
		"+usr/local/lib64/libloc.so.0",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("libraryNamesChanged:\n got %q\nwant %q", got, want)
	}
	// Nothing changed in library names.
	cs2 := newChangeset(t)
	addFile(t, cs2, "usr/lib/x86_64-linux-gnu/libssl.so.3")
	if got := libraryNamesChanged(ScriptInput{FS: img, Changes: cs2}); len(got) != 0 {
		t.Errorf("libraryNamesChanged(replacement only) = %q", got)
	}
}

func TestDpkgRuns(t *testing.T) {
	p := &Installed{Name: "a", From: "1", To: "2",
		Control:    map[string][]byte{"preinst": []byte("pre"), "postinst": []byte("post")},
		OldScripts: map[string][]byte{"prerm": []byte("oldprerm")}}
	var got []string
	for _, r := range dpkgRuns(p) {
		got = append(got, fmt.Sprintf("%s[%s]%q/%d", r.name, strings.Join(r.args, " "), r.body, r.phase))
	}
	want := []string{`prerm (old)[upgrade 2]"oldprerm"/0`, `preinst[upgrade 1]"pre"/0`, `postrm (old)[upgrade 2]""/0`, `postinst[configure 1]"post"/1`}
	if !slices.Equal(got, want) {
		t.Errorf("upgrade runs %q, want %q", got, want)
	}
	p.From = ""
	got = nil
	for _, r := range dpkgRuns(p) {
		got = append(got, fmt.Sprintf("%s[%s]/%d", r.name, strings.Join(r.args, " "), r.phase))
	}
	if want := []string{"preinst[install]/0", "postinst[configure]/1"}; !slices.Equal(got, want) {
		t.Errorf("install runs %q, want %q", got, want)
	}
}

func actionsOf(as []ScriptAction) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Package+"|"+a.Script+"|"+a.Action)
	}
	return out
}

func TestRunScriptsAllHandled(t *testing.T) {
	img := memFS{files: map[string]string{
		"usr/lib/x86_64-linux-gnu/libssl.so.3": "old",
		"var/lib/dpkg/triggers/File":           "/usr/share/man man-db/noawait\n/usr/lib/x86_64-linux-gnu/gdk-pixbuf-2.0/2.10.0/loaders libgdk-pixbuf-2.0-0:amd64/noawait\n",
	}}
	cs := newChangeset(t)
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/libssl.so.3")
	addFile(t, cs, "etc/nginx/nginx.conf")
	installed := []*Installed{
		{Name: "libssl3", Arch: "amd64", From: "3.0.20-1~deb12u2", To: "3.0.22-1~deb12u2",
			Control: map[string][]byte{"triggers": []byte(scLibssl3Triggers)}},
		{Name: "nginx-common", Arch: "all", From: "1.22.1-9+deb12u9", To: "1.22.1-9+deb12u11",
			Control: map[string][]byte{
				"postinst": []byte("#!/bin/sh\nset -e\n" + scDhInstallinitPostinst + scDhInstallsystemdPostinst + "\n\nexit 0\n"),
				"preinst":  []byte("#!/bin/sh\nset -e\n\nexit 0\n"),
				"config":   []byte("#!/bin/sh\ndb_input high nginx/x\n"), // not run by dpkg on upgrade
			},
			OldScripts: map[string][]byte{"prerm": []byte(scNginxCommonPrerm), "postrm": []byte(scDhInstalldebconfPostrm)}},
		{Name: "perl-base", Arch: "amd64", From: "5.36.0-7+deb12u3", To: "5.36.0-7+deb12u4",
			Control:    map[string][]byte{"postinst": []byte(scPerlBasePostinst), "preinst": []byte(scPerlBasePostinst)},
			OldScripts: map[string][]byte{"prerm": []byte(scPerlBasePostinst), "postrm": []byte(scPerlBasePostinst)}},
	}
	done, err := RunScripts(context.Background(), ScriptInput{FS: img, Arch: "amd64", Changes: cs, Installed: installed, Mtime: testMtime})
	if err != nil {
		t.Fatalf("RunScripts: %v", err)
	}
	want := []string{
		"nginx-common|prerm (old)|no-op",
		"nginx-common|preinst|no-op",
		"nginx-common|postrm (old)|no-op",
		"nginx-common|postinst|no-op",
		"perl-base|prerm (old)|no-op",
		"perl-base|preinst|no-op",
		"perl-base|postrm (old)|no-op",
		"perl-base|postinst|no-op",
		"libssl3|trigger ldconfig|native",
	}
	if got := actionsOf(done); !slices.Equal(got, want) {
		t.Errorf("RunScripts actions:\n got %q\nwant %q", got, want)
	}
	if cs.Len() != 2 {
		t.Errorf("RunScripts changed the changeset: %d entries", cs.Len())
	}
}

func TestRunScriptsUnhandled(t *testing.T) {
	img := memFS{files: map[string]string{
		"usr/lib/x86_64-linux-gnu/libssl.so.3": "old",
		"var/lib/dpkg/triggers/File":           "/usr/share/man man-db/noawait\n/usr/share/doc other\nbogus line here\nrelative pkg\n",
	}}
	cs := newChangeset(t)
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/libssl.so.4")
	addFile(t, cs, "usr/share/man/man1/openssl.1ssl.gz")
	installed := []*Installed{
		{Name: "libssl3", Arch: "amd64", From: "3.0.20-1~deb12u2", To: "3.0.22-1~deb12u2",
			Control: map[string][]byte{"triggers": []byte(scLibssl3Triggers)}},
		{Name: "openssl", Arch: "amd64", From: "3.0.20-1~deb12u2", To: "3.0.22-1~deb12u2",
			Control: map[string][]byte{"postinst": []byte(scOpensslPostinst)}},
		{Name: "newpkg", Arch: "amd64", To: "1.0",
			Control: map[string][]byte{"preinst": []byte(scAptMaintscript), "postinst": []byte("#!/bin/sh\nupdate-alternatives --install x\n"), "triggers": []byte("activate my-trigger\n")},
			// Old scripts of a new package are never run.
			OldScripts: map[string][]byte{"prerm": []byte("rm -rf /\n")}},
	}
	done, err := RunScripts(context.Background(), ScriptInput{FS: img, Arch: "amd64", Changes: cs, Installed: installed, Mtime: testMtime})
	if !errors.Is(err, ErrScripts) {
		t.Fatalf("RunScripts error %v, want ErrScripts", err)
	}
	var se *ScriptError
	if !errors.As(err, &se) {
		t.Fatalf("error %T is not a *ScriptError", err)
	}
	if got, want := actionsOf(done), []string{"newpkg|preinst|no-op"}; !slices.Equal(got, want) {
		t.Errorf("done %q, want %q", got, want)
	}
	var got []string
	for _, a := range se.Unhandled {
		got = append(got, a.Package+"|"+a.Script)
	}
	want := []string{
		"openssl|postinst",
		"newpkg|postinst",
		"man-db|trigger /usr/share/man",
		"libssl3|trigger ldconfig",
		"newpkg|trigger my-trigger",
	}
	if !slices.Equal(got, want) {
		t.Errorf("unhandled:\n got %q\nwant %q", got, want)
	}
	msg := err.Error()
	for _, s := range []string{
		"openssl postinst: ",
		"newpkg postinst: ",
		"update-alternatives --install x",
		"man-db trigger /usr/share/man: trigger processing is not handled natively",
		"libssl3 trigger ldconfig: the patch adds or removes libraries (+usr/lib/x86_64-linux-gnu/libssl.so.4)",
		"newpkg trigger my-trigger",
		"--sandbox",
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("error message lacks %q:\n%s", s, msg)
		}
	}
}

func TestRunScriptsTriggerFromSeveralPackages(t *testing.T) {
	cs := newChangeset(t)
	installed := []*Installed{
		{Name: "libb", From: "1", To: "2", Control: map[string][]byte{"triggers": []byte("activate-noawait ldconfig\n")}},
		{Name: "liba", From: "1", To: "2", Control: map[string][]byte{"triggers": []byte("activate-noawait ldconfig\n")}},
	}
	done, err := RunScripts(context.Background(), ScriptInput{FS: memFS{}, Changes: cs, Installed: installed})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := actionsOf(done), []string{"libb, liba|trigger ldconfig|native"}; !slices.Equal(got, want) {
		t.Errorf("done %q, want %q", got, want)
	}
}

func TestRunScriptsDistroless(t *testing.T) {
	cs := newChangeset(t)
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/libnew.so.9") // would need ldconfig
	installed := []*Installed{
		{Name: "openssl", From: "1", To: "2", Control: map[string][]byte{"postinst": []byte(scOpensslPostinst), "config": []byte("x"), "triggers": []byte(scLibssl3Triggers)}},
		{Name: "tzdata", From: "1", To: "2", Control: map[string][]byte{"preinst": []byte("x"), "postinst": []byte("x"), "prerm": []byte("x"), "postrm": []byte("x")}},
	}
	done, err := RunScripts(context.Background(), ScriptInput{FS: memFS{}, Changes: cs, Installed: installed, Distroless: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"openssl|postinst|skipped-distroless",
		"tzdata|preinst|skipped-distroless",
		"tzdata|postinst|skipped-distroless",
		"tzdata|prerm|skipped-distroless",
		"tzdata|postrm|skipped-distroless",
	}
	if got := actionsOf(done); !slices.Equal(got, want) {
		t.Errorf("done %q, want %q", got, want)
	}
}

func TestRunScriptsNothing(t *testing.T) {
	done, err := RunScripts(context.Background(), ScriptInput{FS: memFS{}, Changes: newChangeset(t)})
	if err != nil || len(done) != 0 {
		t.Errorf("RunScripts(nothing) = %v, %v", done, err)
	}
}

func TestRunScriptsCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	installed := []*Installed{{Name: "a", From: "1", To: "2", Control: map[string][]byte{"postinst": []byte("x")}}}
	if _, err := RunScripts(ctx, ScriptInput{FS: memFS{}, Changes: newChangeset(t), Installed: installed}); !errors.Is(err, context.Canceled) {
		t.Errorf("RunScripts(canceled) error %v", err)
	}
}

func TestActivatedFileTriggers(t *testing.T) {
	img := memFS{files: map[string]string{"var/lib/dpkg/triggers/File": "" +
		"/usr/share/man man-db/noawait\n" +
		"/usr/lib/x86_64-linux-gnu/gio/modules libglib2.0-0:amd64/noawait\n" +
		"/usr/share/icons/hicolor hicolor-icon-theme\n" +
		"/etc/x y\n" +
		"/../usr/share/fonts fontconfig\n"}}
	cs := newChangeset(t)
	addFile(t, cs, "usr/share/man/man1/x.1.gz")
	addFile(t, cs, "usr/share/mansion") // not under /usr/share/man
	addFile(t, cs, "usr/lib/x86_64-linux-gnu/gio/modules")
	addFile(t, cs, "usr/share/fonts/a.ttf")
	got, err := activatedFileTriggers(ScriptInput{FS: img, Changes: cs})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"/usr/share/man":                        {"man-db"},
		"/usr/lib/x86_64-linux-gnu/gio/modules": {"libglib2.0-0:amd64"},
		"/../usr/share/fonts":                   {"fontconfig"},
	}
	if len(got) != len(want) {
		t.Errorf("activatedFileTriggers = %q, want %q", got, want)
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("activatedFileTriggers[%q] = %q, want %q", k, got[k], v)
		}
	}
	// No triggers file.
	if got, err := activatedFileTriggers(ScriptInput{FS: memFS{}, Changes: cs}); err != nil || got != nil {
		t.Errorf("activatedFileTriggers(no File) = %q, %v", got, err)
	}
}

func postRuns(specs ...string) []scriptRun {
	var out []scriptRun
	for _, s := range specs {
		name, deps, _ := strings.Cut(s, ":")
		p := &Installed{Name: name}
		if deps != "" {
			p.Depends = strings.Split(deps, ",")
		}
		out = append(out, scriptRun{pkg: p, name: "preinst", phase: 0}, scriptRun{pkg: p, name: "postinst", phase: 1})
	}
	return out
}

func orderOf(runs []scriptRun) string {
	var names []string
	for _, r := range runs {
		if r.phase != 1 {
			return "phase-0 run " + r.pkg.Name
		}
		names = append(names, r.pkg.Name)
	}
	return strings.Join(names, " ")
}

func TestConfigureOrder(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		want  string
	}{
		{"empty", nil, ""},
		{"independent keep order", []string{"c", "a", "b"}, "c a b"},
		{"dependency first", []string{"a:b", "b"}, "b a"},
		{"chain", []string{"a:b", "b:c", "c"}, "c b a"},
		{"diamond", []string{"top:l,r", "l:base", "r:base", "base"}, "base l r top"},
		{"outside dependencies ignored", []string{"a:libc6,zlib1g", "b:a"}, "a b"},
		{"self dependency ignored", []string{"a:a", "b"}, "a b"},
		{"alternatives all count", []string{"nginx:nginx-common,libssl3", "libssl3:libc6", "nginx-common:debconf"}, "libssl3 nginx-common nginx"},
		{"two-cycle keeps order", []string{"a:b", "b:a"}, "a b"},
		{"two-cycle keeps order reversed", []string{"b:a", "a:b"}, "b a"},
		{"cycle after ready ones", []string{"x", "a:b", "b:a"}, "x a b"},
		{"three-cycle", []string{"a:b", "b:c", "c:a"}, "a c b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := orderOf(configureOrder(postRuns(tt.specs...))); got != tt.want {
				t.Errorf("configureOrder(%q) = %q, want %q", tt.specs, got, tt.want)
			}
		})
	}
}

// TestRegression_ConfigureOrderCycleFlushesAll: when configureOrder finds no
// ready package (a cycle), it appends every package not yet placed, in
// input order, instead of breaking the cycle and continuing. A package
// that merely depends on a cycle member, without being in the cycle, is
// then configured before its dependency, against the function's contract
// ("a package configures after the packages of the set it depends on").
// Input: c depends on a; a and b depend on each other; order c, a, b.
// Got "c a b"; want a and b (in either order) before c.
func TestRegression_ConfigureOrderCycleFlushesAll(t *testing.T) {
	got := orderOf(configureOrder(postRuns("c:a", "a:b", "b:a")))
	// A cycle member goes first; c (which needs only a) may follow a at
	// once.
	if got != "a b c" && got != "b a c" && got != "a c b" {
		t.Errorf("configureOrder(c:a, a:b, b:a) = %q, want a cycle member first and c after a", got)
	}
}

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
		"(run them isolated with --sandbox, or patch only other packages with --report)"
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
	if errors.Is(err, ErrDpkgConflict) || errors.Is(ErrScripts, err) {
		t.Error("ScriptError matches unrelated errors")
	}
	if msg := (&ScriptError{}).Error(); !strings.HasPrefix(msg, "maintainer scripts") {
		t.Errorf("empty ScriptError message %q", msg)
	}
}

// FuzzClassifyScript checks that classifyScript (and the static reading
// of scripts under it) never panics, whatever the script, installed version
// and dpkg arguments, and that a no-op stays one with "exit 0" appended.
func FuzzClassifyScript(f *testing.F) {
	for _, s := range []string{
		"", scNginxCommonPrerm, scNginxCommonPostrm, scDhInstallinitPostinst + scDhInstallsystemdPostinst, scAptMaintscript, scPerlBasePostinst,
		scTzdataPreinst, scLoginMaintscript, scOpensslPostinst, "# Automatically added by dh_\n# End automatically added section\n",
		"# Automatically added by dh_installdeb/x\ndpkg-maintscript-helper rm_conffile /x -- \"$@\"\n# End automatically added section",
		"dpkg-maintscript-helper mv_conffile  --  \"$@\"", "case \"$1\" in\n a|b) exit 0 ;;\n *)\n ;;\nesac\n",
		"if [ \"$1\" = configure ] && [ -z \"$2\" ]; then\n x\nelif dpkg --compare-versions \"$2\" lt-nl 1.0; then\n y\nelse\n :\nfi\n",
		"f() {\n :\n}\n", "a \\\n b\n", "if true; then :; fi\n",
	} {
		for i, from := range []string{"", "1.0", "2.6.1", "1:4.13-1", "bad version"} {
			f.Add(s, from, uint8(i))
		}
	}
	argSets := [][]string{{"configure"}, {"upgrade"}, {"purge"}, {"remove"}, {"install"}, {"abort-upgrade"}, {"triggered", "ldconfig"}}
	f.Fuzz(func(t *testing.T, script, from string, which uint8) {
		args := argSets[int(which)%len(argSets)]
		if from != "" {
			args = append(slices.Clone(args), from)
		}
		detail, ok := classifyScript(script, from, args, nil)
		if detail == "" {
			t.Fatalf("classifyScript(%q, %q, %q): empty detail", script, from, args)
		}
		maintscriptNoop(script, from)
		if ok {
			if _, ok2 := classifyScript(script+"\nexit 0\n", from, args, nil); !ok2 {
				t.Fatalf("classifyScript(%q + exit 0, %q, %q) is not a no-op", script, from, args)
			}
		}
	})
}

// TestRegression_ShStaticExitInUnknownBranch: the static reading treats an
// "exit 0" inside a branch it cannot decide (a condition on the image, a
// case on an unknown word) as the end of the script, so the statements
// after the if/case are never judged: the script is called a no-op
// although, when the branch is not taken, it runs them. This breaks the
// reading's promise ("may say effect for a script that has none, never
// the reverse").
func TestRegression_ShStaticExitInUnknownBranch(t *testing.T) {
	for _, script := range []string{
		"#!/bin/sh\nset -e\nif [ -x /usr/bin/never-there ]; then\n\texit 0\nfi\nrm -rf /var/lib/foo\n",
		"#!/bin/sh\nset -e\ncase \"$DPKG_MAINTSCRIPT_NAME\" in\n  preinst) exit 0 ;;\nesac\nrm -rf /var/lib/foo\n",
	} {
		if detail, ok := classify(script, "1.0"); ok {
			t.Errorf("classifyScript(%q, configure 1.0) = %q, true; want false (rm -rf runs when the branch is not taken)", script, detail)
		}
	}
}

// TestRegression_ShStaticAndOrPrecedence: in the shell, && and || have equal
// precedence and group left to right: "A && B || C" is "(A && B) || C".
// The static reading splits at the first " && " and reads it as
// "A && (B || C)", so with A false it decides the whole condition is
// false, and skips a branch the shell runs. Here, for dpkg's "upgrade"
// call, the shell evaluates (false && ...) || true and runs rm -f.
func TestRegression_ShStaticAndOrPrecedence(t *testing.T) {
	script := "#!/bin/sh\nset -e\nif [ \"$1\" = purge ] && [ -e /etc/x ] || [ \"$1\" = upgrade ]; then\n\trm -f /etc/y\nfi\n"
	if detail, ok := classify(script, "1.0", "upgrade", "2.0"); ok {
		t.Errorf("classifyScript(%q, upgrade 2.0) = %q, true; want false (the shell runs rm -f /etc/y)", script, detail)
	}
}
