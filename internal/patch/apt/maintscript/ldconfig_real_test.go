package maintscript

import (
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/patch/apt/apttest"
	"github.com/drydock-project/drydock/internal/patch/apt/dpkg"
	"github.com/drydock-project/drydock/internal/patch/layer"
	"github.com/drydock-project/drydock/internal/patch/ldcache"
	"github.com/drydock-project/drydock/internal/testimage"
)

// TestLdconfigTriggerRebuildsCache removes a library from the real
// bookworm image in a changeset and runs the ldconfig trigger: the cache is
// rebuilt natively, without the library, with no sandbox.
func TestLdconfigTriggerRebuildsCache(t *testing.T) {
	ri := apttest.Open(t, testimage.BookwormNginx)
	cs, err := layer.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	mtime := time.Unix(1700000000, 0)
	for _, p := range []string{"usr/lib/x86_64-linux-gnu/libacl.so.1", "usr/lib/x86_64-linux-gnu/libacl.so.1.1.2301"} {
		if _, err := ri.FS.Lstat(p); err != nil {
			t.Fatalf("test image lacks %s: %v", p, err)
		}
		cs.AddWhiteout(p, mtime)
	}
	in := Input{FS: ri.FS, Arch: "amd64", Changes: cs, Mtime: mtime,
		Installed: []*dpkg.Installed{{Name: "libacl1", Arch: "amd64", From: "1", To: "2", Control: map[string][]byte{"triggers": []byte("activate-noawait ldconfig\n")}}}}
	actions, err := Run(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(actions) != 1 || actions[0].Action != "native" || !strings.Contains(actions[0].Detail, "rebuilt") {
		t.Fatalf("actions: %+v", actions)
	}
	e := cs.Get("etc/ld.so.cache")
	if e == nil {
		t.Fatal("no new /etc/ld.so.cache")
	}
	rc, _ := cs.Open(e)
	defer rc.Close()
	data := make([]byte, e.Size)
	if _, err := rc.Read(data); err != nil {
		t.Fatal(err)
	}
	c, err := ldcache.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	old, err := dpkg.ReadOptional(ri.FS, "etc/ld.so.cache")
	if err != nil {
		t.Fatal(err)
	}
	oc, err := ldcache.Parse(old)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entries) != len(oc.Entries)-1 {
		t.Errorf("%d entries after removing libacl, %d before", len(c.Entries), len(oc.Entries))
	}
	for _, en := range c.Entries {
		if strings.HasPrefix(en.Name, "libacl.so") {
			t.Errorf("libacl still in the cache: %+v", en)
		}
	}
}
