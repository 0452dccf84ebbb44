package ldcache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

const (
	magicOld       = "ld.so-1.7.0"
	magicNew       = "glibc-ld.so.cache1.1"
	headerNewSize  = 48
	entryNewSize   = 24
	entryOldSize   = 12
	headerOldSize  = 16
	extensionMagic = 0xeaa42174
	// endianLittle is cache_file_new_flags_endian_little.
	endianLittle = 2
)

// Cache is a decoded ld.so.cache.
type Cache struct {
	// Format is "old" (ld.so-1.7.0 only), "new" (glibc-ld.so.cache1.1
	// only) or "compat" (old followed by new; Entries are the new part's).
	Format string
	// Entries in file order (the order the dynamic linker searches).
	Entries []Entry
	// Generator is the new format's generator extension (glibc >= 2.33),
	// e.g. "ldconfig (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36".
	Generator string
}

// Entry is one library of the cache.
type Entry struct {
	Name      string // the soname (the cache key)
	Path      string // the file the dynamic linker opens
	Flags     int32  // FLAG_ELF_LIBC6 | architecture flag, e.g. 0x0303 for x86-64
	HWCap     uint64
	OSVersion uint32
}

// cacheEntry is an entry being built, with ldconfig's sort keys.
type cacheEntry struct {
	lib, path string
	flags     int32
	osversion uint32
}

// compareEntries is cache.c compare: sonames in reverse _dl_cache_libcmp
// order, then higher flags first, then (no hwcaps here) higher osversion.
func compareEntries(e1, e2 *cacheEntry, signedChar bool) int {
	res := libcmp(e2.lib, e1.lib, signedChar)
	if res == 0 {
		switch {
		case e1.flags < e2.flags:
			return 1
		case e1.flags > e2.flags:
			return -1
		case e2.osversion > e1.osversion:
			return 1
		case e2.osversion < e1.osversion:
			return -1
		}
	}
	return res
}

// libcmp is _dl_cache_libcmp: digit runs compare numerically (as C ints,
// wrapping), other bytes as the platform's char.
func libcmp(p1, p2 string, signedChar bool) int {
	ch := func(s string, i int) int32 {
		if i >= len(s) {
			return 0
		}
		if signedChar {
			return int32(int8(s[i]))
		}
		return int32(s[i])
	}
	isDigit := func(c int32) bool { return c >= '0' && c <= '9' }
	i, j := 0, 0
	for ch(p1, i) != 0 {
		c1, c2 := ch(p1, i), ch(p2, j)
		switch {
		case isDigit(c1):
			if !isDigit(c2) {
				return 1
			}
			var v1, v2 int32
			for isDigit(ch(p1, i)) {
				v1 = v1*10 + ch(p1, i) - '0'
				i++
			}
			for isDigit(ch(p2, j)) {
				v2 = v2*10 + ch(p2, j) - '0'
				j++
			}
			if v1 != v2 {
				return int(v1 - v2)
			}
		case isDigit(c2):
			return -1
		case c1 != c2:
			return int(c1 - c2)
		default:
			i++
			j++
		}
	}
	return int(ch(p1, i) - ch(p2, j))
}

// insertSorted is cache.c add_to_cache's insertion: before the first
// entry that compares greater, so equal entries keep insertion order.
func insertSorted(list []*cacheEntry, e *cacheEntry, signedChar bool) []*cacheEntry {
	i := 0
	for i < len(list) && compareEntries(list[i], e, signedChar) <= 0 {
		i++
	}
	return slices.Insert(list, i, e)
}

// stringTable lays out strings as glibc >= 2.32's elf/stringtable.c:
// unique strings sorted by their reversed bytes (longer first on a
// shared suffix), each one a suffix of its predecessor sharing its bytes.
func stringTable(strs []string) ([]byte, map[string]uint32) {
	uniq := map[string]bool{}
	var list []string
	for _, s := range strs {
		if !uniq[s] {
			uniq[s] = true
			list = append(list, s)
		}
	}
	slices.SortFunc(list, func(l, r string) int {
		n := min(len(l), len(r))
		for i := 1; i <= n; i++ {
			lc, rc := l[len(l)-i], r[len(r)-i]
			if lc != rc {
				return int(rc) - int(lc)
			}
		}
		return len(r) - len(l)
	})
	off := map[string]uint32{}
	if len(list) == 0 {
		return nil, off
	}
	var buf []byte
	var prevOff uint32
	for j, s := range list {
		if j > 0 {
			prev := list[j-1]
			if len(prev) >= len(s) && prev[len(prev)-len(s):] == s {
				off[s] = prevOff + uint32(len(prev)-len(s))
				prevOff = off[s]
				continue
			}
		}
		off[s] = uint32(len(buf))
		prevOff = off[s]
		buf = append(buf, s...)
		buf = append(buf, 0)
	}
	return buf, off
}

// encode writes the new-format cache of the sorted entries for profile p.
func encode(entries []*cacheEntry, p *profile) []byte {
	n := len(entries)
	strBase := uint32(headerNewSize + entryNewSize*n)
	var strs []byte
	keys := make([][2]uint32, n)
	if p.dedupStrings {
		all := make([]string, 0, 2*n)
		for _, e := range entries {
			all = append(all, e.path, e.lib)
		}
		var off map[string]uint32
		strs, off = stringTable(all)
		for i, e := range entries {
			keys[i] = [2]uint32{strBase + off[e.lib], strBase + off[e.path]}
		}
	} else {
		for i, e := range entries {
			k := strBase + uint32(len(strs))
			strs = append(append(strs, e.lib...), 0)
			v := strBase + uint32(len(strs))
			strs = append(append(strs, e.path...), 0)
			keys[i] = [2]uint32{k, v}
		}
	}
	out := make([]byte, headerNewSize, int(strBase)+len(strs)+128)
	copy(out, magicNew)
	binary.LittleEndian.PutUint32(out[20:], uint32(n))
	binary.LittleEndian.PutUint32(out[24:], uint32(len(strs)))
	out[28] = endianLittle
	var ext uint32
	if p.generator != "" {
		ext = uint32(roundUp(uint64(int(strBase)+len(strs)), 4))
		binary.LittleEndian.PutUint32(out[32:], ext)
	}
	var rec [entryNewSize]byte
	for i, e := range entries {
		binary.LittleEndian.PutUint32(rec[0:], uint32(e.flags))
		binary.LittleEndian.PutUint32(rec[4:], keys[i][0])
		binary.LittleEndian.PutUint32(rec[8:], keys[i][1])
		binary.LittleEndian.PutUint32(rec[12:], e.osversion)
		binary.LittleEndian.PutUint64(rec[16:], 0)
		out = append(out, rec[:]...)
	}
	out = append(out, strs...)
	if p.generator == "" {
		return out
	}
	for uint32(len(out)) < ext {
		out = append(out, 0)
	}
	// struct cache_extension with one section (the generator); no
	// glibc-hwcaps section since Build refuses glibc-hwcaps directories.
	var hdr [24]byte
	binary.LittleEndian.PutUint32(hdr[0:], extensionMagic)
	binary.LittleEndian.PutUint32(hdr[4:], 1)
	binary.LittleEndian.PutUint32(hdr[8:], 0) // cache_extension_tag_generator
	binary.LittleEndian.PutUint32(hdr[12:], 0)
	binary.LittleEndian.PutUint32(hdr[16:], ext+24)
	binary.LittleEndian.PutUint32(hdr[20:], uint32(len(p.generator)))
	out = append(out, hdr[:]...)
	return append(out, p.generator...)
}

// Parse decodes an ld.so.cache in the old ("ld.so-1.7.0"), new
// ("glibc-ld.so.cache1.1") or compat (old then new) format. It checks
// every offset and never panics on malformed input.
func Parse(data []byte) (*Cache, error) {
	switch {
	case bytes.HasPrefix(data, []byte(magicNew)):
		c, err := parseNew(data)
		if err != nil {
			return nil, err
		}
		c.Format = "new"
		return c, nil
	case bytes.HasPrefix(data, []byte(magicOld)):
	default:
		return nil, fmt.Errorf("ldcache: not an ld.so.cache (bad magic)")
	}
	if len(data) < headerOldSize {
		return nil, fmt.Errorf("ldcache: truncated old header")
	}
	nlibs := uint64(binary.LittleEndian.Uint32(data[12:]))
	end := headerOldSize + nlibs*entryOldSize
	if end > uint64(len(data)) {
		return nil, fmt.Errorf("ldcache: %d old entries do not fit in %d bytes", nlibs, len(data))
	}
	newAt := roundUp(end, 8)
	if newAt <= uint64(len(data)) && bytes.HasPrefix(data[newAt:], []byte(magicNew)) {
		c, err := parseNew(data[newAt:])
		if err != nil {
			return nil, err
		}
		c.Format = "compat"
		return c, nil
	}
	c := &Cache{Format: "old"}
	strs := data[end:]
	for i := uint64(0); i < nlibs; i++ {
		r := data[headerOldSize+i*entryOldSize:]
		k, v := binary.LittleEndian.Uint32(r[4:]), binary.LittleEndian.Uint32(r[8:])
		name, ok1 := le(strs).cstr(uint64(k))
		path, ok2 := le(strs).cstr(uint64(v))
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("ldcache: old entry %d: string offset out of range", i)
		}
		c.Entries = append(c.Entries, Entry{Name: name, Path: path, Flags: int32(binary.LittleEndian.Uint32(r))})
	}
	return c, nil
}

func parseNew(data []byte) (*Cache, error) {
	if len(data) < headerNewSize {
		return nil, fmt.Errorf("ldcache: truncated header")
	}
	if f := data[28] & 3; f == 3 {
		return nil, fmt.Errorf("ldcache: big-endian cache not supported")
	}
	nlibs := uint64(binary.LittleEndian.Uint32(data[20:]))
	if headerNewSize+nlibs*entryNewSize > uint64(len(data)) {
		return nil, fmt.Errorf("ldcache: %d entries do not fit in %d bytes", nlibs, len(data))
	}
	c := &Cache{}
	b := le(data)
	for i := uint64(0); i < nlibs; i++ {
		r := data[headerNewSize+i*entryNewSize:]
		k, v := binary.LittleEndian.Uint32(r[4:]), binary.LittleEndian.Uint32(r[8:])
		name, ok1 := b.cstr(uint64(k))
		path, ok2 := b.cstr(uint64(v))
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("ldcache: entry %d: string offset out of range", i)
		}
		c.Entries = append(c.Entries, Entry{
			Name: name, Path: path,
			Flags:     int32(binary.LittleEndian.Uint32(r)),
			OSVersion: binary.LittleEndian.Uint32(r[12:]),
			HWCap:     binary.LittleEndian.Uint64(r[16:]),
		})
	}
	ext := uint64(binary.LittleEndian.Uint32(data[32:]))
	if ext == 0 {
		return c, nil
	}
	if m, ok := b.u32(ext); !ok || m != extensionMagic {
		return nil, fmt.Errorf("ldcache: bad extension magic at %d", ext)
	}
	count, ok := b.u32(ext + 4)
	if !ok || uint64(count)*16 > uint64(len(data)) {
		return nil, fmt.Errorf("ldcache: truncated extension directory")
	}
	for i := uint64(0); i < uint64(count); i++ {
		s := ext + 8 + 16*i
		tag, ok1 := b.u32(s)
		off, ok2 := b.u32(s + 8)
		size, ok3 := b.u32(s + 12)
		if !ok1 || !ok2 || !ok3 || uint64(off)+uint64(size) > uint64(len(data)) {
			return nil, fmt.Errorf("ldcache: extension section %d out of range", i)
		}
		if tag == 0 {
			c.Generator = string(data[off : uint64(off)+uint64(size)])
		}
	}
	return c, nil
}
