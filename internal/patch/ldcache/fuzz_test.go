package ldcache

import (
	"encoding/binary"
	"testing"
)

// FuzzParse checks that Parse never panics, and that what it accepts from
// a built cache round-trips.
func FuzzParse(f *testing.F) {
	p := releases["2.36"]
	p.generator = "ldconfig (Debian GLIBC 2.36-9) stable release version 2.36"
	entries := []*cacheEntry{
		{lib: "libz.so.1", path: "/lib/x86_64-linux-gnu/libz.so.1", flags: 0x303},
		{lib: "libc.so.6", path: "/lib/x86_64-linux-gnu/libc.so.6", flags: 0x303},
	}
	f.Add(encode(entries, &p))
	old := releases["2.31"]
	f.Add(encode(entries, &old))
	// An old-format cache and a compat one.
	o := make([]byte, 16+12)
	copy(o, magicOld)
	binary.LittleEndian.PutUint32(o[12:], 1)
	binary.LittleEndian.PutUint32(o[16:], 3)
	binary.LittleEndian.PutUint32(o[20:], 0)
	binary.LittleEndian.PutUint32(o[24:], 2)
	f.Add(append(o, "a\x00b\x00"...))
	f.Add(append(append(o, 0, 0, 0, 0), encode(entries, &p)...))
	f.Add([]byte(magicNew))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		for _, e := range c.Entries {
			_ = e.Name + e.Path
		}
	})
}

// FuzzProcessFile checks that the ELF reader never panics.
func FuzzProcessFile(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01" + string(make([]byte, 120))))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, a := range arches {
			for _, v := range []string{"2.31", "2.41"} {
				p := releases[v]
				_ = processFile(data, a, &p)
			}
		}
	})
}

func TestEncodeRoundTrip(t *testing.T) {
	entries := []*cacheEntry{
		{lib: "libz.so.1", path: "/lib/x86_64-linux-gnu/libz.so.1", flags: 0x303},
		{lib: "libc.so.6", path: "/lib/x86_64-linux-gnu/libc.so.6", flags: 0x303, osversion: 0x30200},
	}
	for _, v := range []string{"2.31", "2.36"} {
		p := releases[v]
		if p.dedupStrings {
			p.generator = "gen"
		}
		c, err := Parse(encode(entries, &p))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Entries) != 2 || c.Entries[0].Name != "libz.so.1" || c.Entries[1].Path != "/lib/x86_64-linux-gnu/libc.so.6" ||
			c.Entries[1].OSVersion != 0x30200 || c.Generator != p.generator || c.Format != "new" {
			t.Errorf("%s: %+v", v, c)
		}
	}
}
