package maintscript

import (
	"io/fs"
	"strings"
	"testing"
)

// Excerpts of real Debian maintainer scripts (nginx, nginx-common,
// ca-certificates, tzdata, apt, openssl in bookworm).
const (
	nginxPrerm = `#!/bin/sh
set -e
case "$1" in
  remove|remove-in-favour|deconfigure|deconfigure-in-favour)
    if [ -x /etc/init.d/nginx ]; then
      invoke-rc.d nginx stop || exit $?
    fi
    ;;
  upgrade|failed-upgrade)
    ;;
  *)
    echo "prerm called with unknown argument \` + "`" + `$1'" >&2
    exit 1
    ;;
esac
exit 0
`
	nginxCommonPreinst = `#!/bin/sh
set -e
case "$1" in
  install)
    rm -f /etc/logrotate.d/nginx-full
    ;;
  upgrade)
    if [ -d /etc/ufw/applications.d/nginx ]; then
      rm -f /etc/ufw/applications.d/nginx/ufw.profile
      rmdir /etc/ufw/applications.d/nginx
    fi
    rm -f /etc/logrotate.d/nginx-full
    rm -f /etc/logrotate.d/nginx-light
    ;;
  abort-upgrade)
    ;;
  *)
    echo "preinst called with unknown argument" >&2
    exit 1
    ;;
esac
if [ "$1" = "install" ] && [ -n "$2" ] && [ -e "/etc/init.d/nginx" ] ; then
	chmod +x "/etc/init.d/nginx" >/dev/null || true
fi
exit 0
`
	tzdataPostrm = `#!/bin/sh
set -e
if [ "$1" = "purge" ]; then
	rm -f /etc/localtime /etc/timezone
fi
`
	caPostrm = `#!/bin/sh
set -e
if [ "$1" = purge ] && [ -e /usr/share/debconf/confmodule ]; then
    . /usr/share/debconf/confmodule
    db_purge
fi
remove_dangling_symlinks() {
    if ! [ -d /etc/ssl/certs ]
    then
        return
    fi
    find /etc/ssl/certs -type l -print | while read h
    do
        test -f "$h" || rm -f "$h"
    done
}
case "$1" in
    remove)
        remove_dangling_symlinks
        ;;
    purge)
        rm -f /etc/ssl/certs/ca-certificates.crt
        ;;
    upgrade|failed-upgrade|abort-install|abort-upgrade|disappear)
        ;;
    *)
        echo "postrm called with unknown argument" >&2
        exit 1
esac
`
	aptPostinst = `#! /bin/sh
set -e
if [ "$1" = 'configure' ] && [ -z "$DPKG_ROOT" ] && ! getent passwd _apt >/dev/null; then
	adduser --force-badname --system --home /nonexistent  \
	    --no-create-home --quiet _apt || true
fi
if [ "$1" = "configure" ] && [ -n "$2" ] && dpkg --compare-versions -- "$2" le-nl "2.4.5~"; then
    rm -f /etc/apt/apt.conf.d/01autoremove-kernels
fi
`
	shOpensslPostinst = `#!/bin/sh -e

if [ ! -e /usr/lib/ssl ]
then
  echo Linking /usr/lib/ssl to /etc/ssl
  ln -sf /etc/ssl /usr/lib/ssl
fi
`
	nginxPostinst = `#!/bin/sh
set -e
case "$1" in
  abort-upgrade|abort-remove|abort-deconfigure|configure)
    ;;
  triggered)
    if invoke-rc.d --quiet nginx status >/dev/null; then
      invoke-rc.d nginx reload || true
    fi
    exit 0
    ;;
  *)
    exit 1
    ;;
esac
if invoke-rc.d --quiet nginx status >/dev/null; then
  invoke-rc.d nginx upgrade || invoke-rc.d nginx restart
  exit $?
else
  if [ -z "$(ss -nlt 'sport = 80' | grep -v ^State)" ]; then
    invoke-rc.d nginx start || exit $?
  else
    echo "Not attempting to start NGINX, port 80 is already in use."
    exit 0
  fi
fi
exit 0
`
)

// fakeEnv is an image with a few paths and users.
func fakeEnv(paths map[string]fs.FileMode, users ...string) *shEnv {
	st := func(p string) (fs.FileMode, bool) {
		m, ok := paths[p]
		return m, ok
	}
	return &shEnv{stat: st, lstat: st, vars: map[string]string{"DPKG_ROOT": ""},
		getent: func(db, key string) (bool, bool) {
			for _, u := range users {
				if u == db+":"+key {
					return true, true
				}
			}
			return false, true
		}}
}

func TestScriptEffect(t *testing.T) {
	image := fakeEnv(map[string]fs.FileMode{"/usr/lib/ssl": fs.ModeSymlink | 0o777, "/etc/init.d/nginx": 0o755,
		"/etc/ssl/certs": fs.ModeDir | 0o755, "/etc/localtime": fs.ModeSymlink | 0o777,
		"/etc/apt/apt.conf.d/01autoremove-kernels": 0o644}, "passwd:_apt")
	bare := fakeEnv(nil)
	for _, c := range []struct {
		name   string
		script string
		args   []string
		env    *shEnv
		noop   bool
		reason string
	}{
		{"empty", "", []string{"configure", "1"}, image, true, ""},
		{"set -e only", "#!/bin/sh\nset -e\n# comment\n\nexit 0\n", []string{"upgrade", "2"}, image, true, ""},
		{"nginx prerm upgrade", nginxPrerm, []string{"upgrade", "1.22.1-9+deb12u11"}, image, true, ""},
		{"nginx prerm remove: service actions are no-ops in an image", nginxPrerm, []string{"remove"}, image, true, ""},
		{"nginx prerm unknown action fails", nginxPrerm, []string{"bogus"}, image, false, "exit 1"},
		{"nginx-common preinst upgrade, nothing to remove", nginxCommonPreinst, []string{"upgrade", "1.22.1-9+deb12u9"}, image, true, ""},
		{"nginx-common preinst upgrade, a file to remove", nginxCommonPreinst, []string{"upgrade", "1"},
			fakeEnv(map[string]fs.FileMode{"/etc/logrotate.d/nginx-light": 0o644}), false, "nginx-light exists"},
		{"nginx-common preinst, ufw dir present", nginxCommonPreinst, []string{"upgrade", "1"},
			fakeEnv(map[string]fs.FileMode{"/etc/ufw/applications.d/nginx": fs.ModeDir | 0o755}), false, "rmdir"},
		{"tzdata postrm upgrade", tzdataPostrm, []string{"upgrade", "2026f"}, image, true, ""},
		{"tzdata postrm purge", tzdataPostrm, []string{"purge"}, image, false, "rm -f"},
		{"ca-certificates postrm upgrade", caPostrm, []string{"upgrade", "20250419"}, image, true, ""},
		{"ca-certificates postrm remove calls a function", caPostrm, []string{"remove"}, image, false, "remove_dangling_symlinks"},
		{"apt postinst, _apt exists, new enough", aptPostinst, []string{"configure", "2.6.1"}, image, true, ""},
		{"apt postinst, _apt missing", aptPostinst, []string{"configure", "2.6.1"}, bare, false, "adduser"},
		{"apt postinst, old version", aptPostinst, []string{"configure", "2.4.0"}, image, false, "01autoremove-kernels"},
		{"openssl postinst, link exists", shOpensslPostinst, []string{"configure", "3.0.20"}, image, true, ""},
		{"openssl postinst, link missing", shOpensslPostinst, []string{"configure", "3.0.20"}, bare, false, "ln -sf"},
		{"nginx postinst configure", nginxPostinst, []string{"configure", "1.22.1-9+deb12u9"}, image, true, ""},
		{"unknown command", "#!/bin/sh\nupdate-foo --bar\n", []string{"configure"}, image, false, "update-foo"},
		{"unknown condition with effect", "if grep -q x /etc/y; then\n  touch /z\nfi\n", []string{"configure"}, image, false, "touch"},
		{"unknown condition without effect", "if grep -q x /etc/y; then\n  :\nfi\n", []string{"configure"}, image, true, ""},
		{"elif and else", "if [ \"$1\" = a ]; then\n touch /a\nelif [ \"$1\" = b ]; then\n :\nelse\n touch /c\nfi\n", []string{"b"}, image, true, ""},
		{"else taken", "if [ \"$1\" = a ]; then\n :\nelse\n touch /c\nfi\n", []string{"b"}, image, false, "touch"},
		{"unterminated if", "if [ \"$1\" = a ]; then\n :\n", []string{"a"}, image, false, "fi"},
		{"case one-line branches", "case \"$1\" in\n  configure) ;;\n  remove) rm -rf /x ;;\nesac\n", []string{"configure"}, image, true, ""},
		{"case one-line branch taken", "case \"$1\" in\n  configure) rm -rf /x ;;\nesac\n", []string{"configure"}, image, false, "rm -rf"},
		{"redirect in echo", "echo x > /etc/y\n", nil, image, false, "echo"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := scriptEffect(c.script, c.args, c.env)
			if (err == nil) != c.noop {
				t.Fatalf("scriptEffect = %v, want no-op %v", err, c.noop)
			}
			if err != nil && !strings.Contains(err.Error(), c.reason) {
				t.Errorf("reason %q does not mention %q", err, c.reason)
			}
		})
	}
}

func TestCompareVersionsOp(t *testing.T) {
	for _, c := range []struct {
		a, op, b string
		want     bool
	}{
		{"2.6.1", "le-nl", "2.4.5~", false},
		{"2.4.0", "le-nl", "2.4.5~", true},
		{"", "le-nl", "2.4.5~", false}, // -nl: empty is later
		{"", "lt", "1", true},
		{"1.0", "eq", "1.0", true},
		{"1.0", "ne", "1.0", false},
		{"1:1", "gt", "2", true},
		{"1~rc", "lt", "1", true},
		{"1", "ge", "1", true},
		{"1", "<<", "2", true},
	} {
		got, ok := compareVersionsOp(c.a, c.op, c.b)
		if !ok || got != c.want {
			t.Errorf("%q %s %q = %v, %v; want %v", c.a, c.op, c.b, got, ok, c.want)
		}
	}
	if _, ok := compareVersionsOp("1", "bogus", "2"); ok {
		t.Error("unknown operator accepted")
	}
}

func FuzzScriptEffect(f *testing.F) {
	for _, s := range []string{nginxPrerm, nginxCommonPreinst, caPostrm, aptPostinst, nginxPostinst, "case x in\n", "if\nthen\n"} {
		f.Add(s, "upgrade", "1.0")
	}
	f.Fuzz(func(t *testing.T, script, a1, a2 string) {
		scriptEffect(script, []string{a1, a2}, fakeEnv(nil))
	})
}

func TestUpdateAlternativesReregistration(t *testing.T) {
	// var/lib/dpkg/alternatives/pager as dpkg writes it (bookworm).
	db := "auto\n/usr/bin/pager\npager.1.gz\n/usr/share/man/man1/pager.1.gz\n\n/bin/more\n50\n/usr/share/man/man1/more.1.gz\n/usr/bin/less\n77\n/usr/share/man/man1/less.1.gz\n\n"
	env := fakeEnv(nil)
	env.readFile = func(p string) ([]byte, bool) {
		if p == "/var/lib/dpkg/alternatives/pager" {
			return []byte(db), true
		}
		return nil, false
	}
	install := "update-alternatives --install /usr/bin/pager pager /usr/bin/less 77 --slave /usr/share/man/man1/pager.1.gz pager.1.gz /usr/share/man/man1/less.1.gz\n"
	if err := scriptEffect(install, []string{"configure", "1"}, env); err != nil {
		t.Errorf("re-registering less: %v", err)
	}
	for _, c := range []string{
		strings.Replace(install, " 77 ", " 78 ", 1),
		strings.Replace(install, "/usr/bin/less", "/usr/bin/most", 1),
		"update-alternatives --install /usr/bin/pager pager /usr/bin/less 77\n",
		"update-alternatives --install /usr/bin/editor editor /bin/nano 40\n",
	} {
		if scriptEffect(c, []string{"configure", "1"}, env) == nil {
			t.Errorf("%q judged a no-op", c)
		}
	}
}
