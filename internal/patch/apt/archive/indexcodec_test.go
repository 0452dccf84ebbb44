package archive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestIndexCodecRoundTrip(t *testing.T) {
	list, err := ParsePackages(strings.NewReader(packagesText), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) < 2 {
		t.Fatalf("fixture has %d packages", len(list))
	}
	got, err := decodeIndex(encodeIndex(list))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, list) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", got, list)
	}
	if got, err := decodeIndex(encodeIndex(nil)); err != nil || len(got) != 0 {
		t.Errorf("empty index: %v, %v", got, err)
	}
}

func TestIndexCodecRefuses(t *testing.T) {
	list, _ := ParsePackages(strings.NewReader(packagesText), "test")
	good := encodeIndex(list)
	for name, data := range map[string][]byte{
		"empty":     nil,
		"bad magic": append([]byte("ddkidx9\n"), good[len(indexMagic):]...),
		"truncated": good[:len(good)-3],
		"trailing":  append(append([]byte{}, good...), 0),
	} {
		if _, err := decodeIndex(data); !errors.Is(err, errIndexCodec) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeIndex(f *testing.F) {
	list, _ := ParsePackages(strings.NewReader(packagesText), "test")
	f.Add(encodeIndex(list))
	f.Add([]byte(indexMagic + "\x01\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeIndex(data)
		if err == nil {
			// Lookups of what a loaded index holds never fail.
			x, _ := loadIndex(data)
			for i := range got {
				x.Named(got[i].Package)
				x.Providing(got[i].Package)
			}
			// What decodes encodes back to something that decodes the same.
			again, err := decodeIndex(encodeIndex(got))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("re-encoding: %v", err)
			}
		}
	})
}

// TestIndexDirectories: the name and Provides directories list exactly
// the packages a scan of the whole index finds, in index order, for
// names present, absent, sharing a prefix, and Provides written with
// versions, architecture qualifiers, alternatives and a name twice.
func TestIndexDirectories(t *testing.T) {
	var list []IndexPackage
	for i, p := range []struct{ name, provides string }{
		{"mawk", "awk"},
		{"gawk", "awk, gawk-doc (= 1)"},
		{"libc6", ""},
		{"libc6-dev", "libc-dev (= 2.36-9), libc6-dev-any"},
		{"awk-extra", " awk:any | awkish,\n  awk (= 2) [amd64] <!nocheck>"},
		{"mawk", "awk"}, // a second version: both listed
		{"a", "a"},
	} {
		list = append(list, IndexPackage{Package: p.name, Version: strconv.Itoa(i + 1), Provides: p.provides})
	}
	x, err := loadIndex(encodeIndex(list))
	if err != nil {
		t.Fatal(err)
	}
	scan := func(match func(IndexPackage) bool) []uint32 {
		var out []uint32
		for i, p := range list {
			if match(p) {
				out = append(out, uint32(i))
			}
		}
		return out
	}
	for _, name := range []string{"mawk", "gawk", "libc6", "libc6-dev", "a", "awk-extra", "libc", "zzz", "", "aw"} {
		want := scan(func(p IndexPackage) bool { return p.Package == name })
		if got := x.Named(name); !slices.Equal(got, want) {
			t.Errorf("Named(%q) = %v, want %v", name, got, want)
		}
	}
	for virtual, want := range map[string][]uint32{
		"awk": {0, 1, 4, 5}, "gawk-doc": {1}, "libc-dev": {3}, "libc6-dev-any": {3}, "awkish": {4}, "a": {6},
		"libc6": nil, "aw": nil, "": nil,
	} {
		if got := x.Providing(virtual); !slices.Equal(got, want) {
			t.Errorf("Providing(%q) = %v, want %v", virtual, got, want)
		}
	}
	for i := range list {
		if got := x.At(i); !reflect.DeepEqual(got, list[i]) {
			t.Errorf("At(%d) = %+v, want %+v", i, got, list[i])
		}
	}
}

// TestIndexCodecRefusesDirectories: a directory pointing outside its
// tables, out of order or at packages that do not exist is refused at
// load, so lookups never read out of bounds.
func TestIndexCodecRefusesDirectories(t *testing.T) {
	list, _ := ParsePackages(strings.NewReader(packagesText), "test")
	good := encodeIndex(list)
	x, err := loadIndex(good)
	if err != nil {
		t.Fatal(err)
	}
	namesAt := len(good) - len(x.names) - len(x.namePost) - len(x.provs) - len(x.provPost)
	postAt := namesAt + len(x.names)
	for name, edit := range map[string]func(b []byte){
		"key outside the blob": func(b []byte) { binary.LittleEndian.PutUint32(b[namesAt:], 1<<30) },
		"keys out of order": func(b []byte) {
			e := slices.Clone(b[namesAt : namesAt+dirEntrySize])
			copy(b[namesAt:], b[namesAt+dirEntrySize:namesAt+2*dirEntrySize])
			copy(b[namesAt+dirEntrySize:], e)
		},
		"postings outside the table": func(b []byte) { binary.LittleEndian.PutUint32(b[namesAt+12:], 99) },
		"no such package":            func(b []byte) { binary.LittleEndian.PutUint32(b[postAt:], 7) },
	} {
		bad := slices.Clone(good)
		edit(bad)
		if _, err := loadIndex(bad); !errors.Is(err, errIndexCodec) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestIndexBuilder: the index a builder gives in memory answers as the
// encoding of its parts does once loaded, and a package without a Source
// field stores its name and version once.
func TestIndexBuilder(t *testing.T) {
	list, err := ParsePackages(strings.NewReader(packagesText), "test")
	if err != nil {
		t.Fatal(err)
	}
	list = append(list, IndexPackage{Package: "mawk", Version: "1.3", Source: "mawk", SourceVersion: "1.3", Provides: "awk"},
		IndexPackage{Package: "gawk", Version: "5", Source: "gawk-src", SourceVersion: "5", Provides: "awk, gawk-doc"})
	b := newIndexBuilder(16)
	for i := range list {
		b.add(&list[i])
	}
	mem, parts := b.finish()
	loaded, err := loadIndex(bytes.Join(parts, nil))
	if err != nil {
		t.Fatal(err)
	}
	for name, x := range map[string]*packageIndex{"built": mem, "loaded": loaded} {
		if x.Len() != len(list) {
			t.Fatalf("%s: %d packages, want %d", name, x.Len(), len(list))
		}
		for i := range list {
			if got := x.At(i); !reflect.DeepEqual(got, list[i]) {
				t.Errorf("%s: At(%d) = %+v, want %+v", name, i, got, list[i])
			}
		}
		for _, p := range []string{"libssl3", "tzdata", "mawk", "gawk", "awk"} {
			if !slices.Equal(x.Named(p), loaded.Named(p)) || !slices.Equal(x.Providing(p), loaded.Providing(p)) {
				t.Errorf("%s: lookups of %q differ", name, p)
			}
		}
		if got := x.Providing("awk"); !slices.Equal(got, []uint32{uint32(len(list) - 2), uint32(len(list) - 1)}) {
			t.Errorf("%s: Providing(awk) = %v", name, got)
		}
	}
	if mem.bytes() < int64(len(bytes.Join(parts, nil))) {
		t.Errorf("the built index counts %d bytes, less than its encoding", mem.bytes())
	}
	whole := 0
	for i := range list {
		for _, f := range indexStrings(&list[i]) {
			whole += len(*f)
		}
	}
	shared := 0
	for _, p := range list {
		if p.Source == p.Package {
			shared += len(p.Package)
		}
		if p.SourceVersion == p.Version {
			shared += len(p.Version)
		}
	}
	if shared == 0 || len(mem.blob) != whole-shared {
		t.Errorf("blob of %d bytes, want %d (%d shared)", len(mem.blob), whole-shared, shared)
	}
}

// TestIndexAtOwnsItsStrings: a package At returns points nowhere into
// the index, so that keeping one of its strings (a version in a plan)
// does not keep the whole index alive.
func TestIndexAtOwnsItsStrings(t *testing.T) {
	list, err := ParsePackages(strings.NewReader(packagesText), "test")
	if err != nil {
		t.Fatal(err)
	}
	x, err := loadIndex(encodeIndex(list))
	if err != nil {
		t.Fatal(err)
	}
	lo := uintptr(unsafe.Pointer(unsafe.StringData(x.blob)))
	hi := lo + uintptr(len(x.blob))
	for i := range list {
		p := x.At(i)
		for j, f := range indexStrings(&p) {
			if at := uintptr(unsafe.Pointer(unsafe.StringData(*f))); len(*f) > 0 && at >= lo && at < hi {
				t.Errorf("package %d: field %d points into the index", i, j)
			}
		}
		if !reflect.DeepEqual(p, list[i]) {
			t.Errorf("At(%d) = %+v, want %+v", i, p, list[i])
		}
	}
}
