package maintscript

import (
	"slices"
	"strings"
	"testing"
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
// Run neither handles it nor reports it as unhandled.
func TestRegression_TriggerActivateAwait(t *testing.T) {
	in := "activate-await update-sgmlcatalog\n"
	got := parseTriggerActivations([]byte(in))
	if want := []string{"update-sgmlcatalog"}; !slices.Equal(got, want) {
		t.Errorf("parseTriggerActivations(%q) = %q, want %q", in, got, want)
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
