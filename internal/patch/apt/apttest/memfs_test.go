package apttest

import (
	"errors"
	"io/fs"
	"testing"
)

func TestMemFS(t *testing.T) {
	m := MemFS{Files: map[string]string{"usr/lib/a.so": "x"}, Links: map[string]string{"lib": "usr/lib"}}
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
