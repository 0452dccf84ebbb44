package archive

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unsafe"
)

// The parsed-index encoding, read lazily: every string of every package
// in one blob, each package's fields as varint (offset, length) pairs
// into it, a fixed-width table of where each package's record starts,
// and two directories — by package name and by the names its Provides
// field lists — so a resolver decodes only the packages it looks at, not
// the 60,000 of a main suite.
//
//	"ddkidx3\n"
//	uvarint count | uvarint len(blob) | uvarint len(records) |
//	uvarint names | uvarint name postings | uvarint provides | uvarint provides postings
//	blob
//	records:  count × (13 × (uvarint offset, uvarint length) | varint Size | varint InstalledSize)
//	starts:   count × uint32 (offset of each record in records)
//	names:    names × (uint32 key offset, uint32 key length, uint32 first posting, uint32 postings)
//	postings: uint32 package numbers, in index order
//	provides, provides postings: the same shape
//
// Keys are substrings of the blob (a package's name, a name in a
// Provides field), sorted and distinct. All integers are little-endian.
// Everything is checked when the encoding is loaded, so a loaded index
// answers without errors.

const indexMagic = "ddkidx3\n"

// indexStrings are the string fields stored, in order.
func indexStrings(p *IndexPackage) [13]*string {
	return [13]*string{&p.Package, &p.Version, &p.Architecture, &p.Source, &p.SourceVersion, &p.MultiArch,
		&p.Depends, &p.PreDepends, &p.Provides, &p.Breaks, &p.Conflicts, &p.Filename, &p.SHA256}
}

// Positions of fields in indexStrings.
const (
	fieldPackage       = 0
	fieldVersion       = 1
	fieldSource        = 3
	fieldSourceVersion = 4
	fieldProvides      = 8
)

const dirEntrySize = 16

// providedNames calls fn with each package name the Provides field
// value lists and its offset in value: the name of each alternative, as
// the resolver's relation parser reads it (up to a space, "(", "[", "<"
// or ":"). Malformed elements give what they give: the resolver parses
// each package it is offered again and keeps only what really provides.
func providedNames(value string, fn func(name string, off int)) {
	start := 0
	for start <= len(value) {
		end := strings.IndexAny(value[start:], ",|")
		if end < 0 {
			end = len(value)
		} else {
			end += start
		}
		elem := value[start:end]
		lead := len(elem) - len(strings.TrimLeft(elem, " \t\n"))
		name := elem[lead:]
		if i := strings.IndexAny(name, " \t\n([<:"); i >= 0 {
			name = name[:i]
		}
		if name != "" {
			fn(name, start+lead)
		}
		start = end + 1
	}
}

// dirBuilder collects one directory: each (key, package) pair as the
// key's place in the blob, 12 bytes, sorted and grouped only when
// written (a map of keys to slices of packages took 10 MB for a main
// suite's 60,000 names).
type dirBuilder struct {
	refs []dirRef
}

type dirRef struct{ off, n, pkg uint32 }

func (b *dirBuilder) add(off, n int, pkg uint32) {
	b.refs = append(b.refs, dirRef{uint32(off), uint32(n), pkg})
}

// write returns the directory's entries and postings: keys sorted and
// distinct, the packages under each in index order, once each (a
// Provides may name one package twice). blob holds the keys.
func (b *dirBuilder) write(blob string) (dir, post []byte) {
	key := func(r dirRef) string { return blob[r.off : r.off+r.n] }
	slices.SortFunc(b.refs, func(x, y dirRef) int {
		if c := strings.Compare(key(x), key(y)); c != 0 {
			return c
		}
		return cmp.Compare(x.pkg, y.pkg)
	})
	keys, posts := 0, 0
	for i, r := range b.refs {
		switch {
		case i == 0 || key(r) != key(b.refs[i-1]):
			keys++
			posts++
		case r.pkg != b.refs[i-1].pkg:
			posts++
		}
	}
	dir, post = make([]byte, 0, dirEntrySize*keys), make([]byte, 0, 4*posts)
	for i := 0; i < len(b.refs); {
		first, k := len(post)/4, key(b.refs[i])
		j := i
		for ; j < len(b.refs) && key(b.refs[j]) == k; j++ {
			if j == i || b.refs[j].pkg != b.refs[j-1].pkg {
				post = binary.LittleEndian.AppendUint32(post, b.refs[j].pkg)
			}
		}
		dir = binary.LittleEndian.AppendUint32(dir, b.refs[i].off)
		dir = binary.LittleEndian.AppendUint32(dir, b.refs[i].n)
		dir = binary.LittleEndian.AppendUint32(dir, uint32(first))
		dir = binary.LittleEndian.AppendUint32(dir, uint32(len(post)/4-first))
		i = j
	}
	b.refs = nil
	return dir, post
}

// indexBuilder encodes an index package by package, as the parser gives
// them, so that a main suite's 60,000 packages are never all held as
// IndexPackage values and strings (30 MB for bookworm's main) beside
// their encoding: the cold parse of an index is where a workflow's heap
// was largest. The encoding's parts stay apart in memory (a loaded index
// needs no single buffer), and are written one after another.
type indexBuilder struct {
	blob, recs, starts []byte
	count              int
	names, provides    dirBuilder
}

// newIndexBuilder returns a builder whose blob starts with room for
// blobHint bytes (the strings kept are about two fifths of a plain
// index: a good hint saves growing a buffer of tens of MB by copies).
func newIndexBuilder(blobHint int) *indexBuilder {
	return &indexBuilder{blob: make([]byte, 0, max(blobHint, 0))}
}

// add encodes p as the next package. Source and SourceVersion equal to
// Package and Version (a stanza without Source) point at their bytes
// rather than repeat them.
func (b *indexBuilder) add(p *IndexPackage) {
	i := uint32(b.count)
	b.count++
	b.starts = binary.LittleEndian.AppendUint32(b.starts, uint32(len(b.recs)))
	var offs [13]int
	for j, f := range indexStrings(p) {
		off := len(b.blob)
		switch {
		case j == fieldSource && *f == p.Package:
			off = offs[fieldPackage]
		case j == fieldSourceVersion && *f == p.Version:
			off = offs[fieldVersion]
		default:
			b.blob = append(b.blob, *f...)
		}
		offs[j] = off
		b.recs = binary.AppendUvarint(b.recs, uint64(off))
		b.recs = binary.AppendUvarint(b.recs, uint64(len(*f)))
		switch j {
		case fieldPackage:
			b.names.add(off, len(*f), i)
		case fieldProvides:
			providedNames(*f, func(name string, o int) { b.provides.add(off+o, len(name), i) })
		}
	}
	b.recs = binary.AppendVarint(b.recs, p.Size)
	b.recs = binary.AppendVarint(b.recs, p.InstalledSize)
}

// finish returns the index built and its encoding's parts, in order
// (their concatenation is what loadIndex reads). The builder must not be
// used afterwards: the index shares its memory.
func (b *indexBuilder) finish() (*packageIndex, [][]byte) {
	x := &packageIndex{recs: b.recs, starts: b.starts}
	if len(b.blob) > 0 {
		x.blob = unsafe.String(&b.blob[0], len(b.blob))
	}
	x.names, x.namePost = b.names.write(x.blob)
	x.provs, x.provPost = b.provides.write(x.blob)
	head := []byte(indexMagic)
	for _, v := range []int{b.count, len(b.blob), len(b.recs), len(x.names) / dirEntrySize, len(x.namePost) / 4, len(x.provs) / dirEntrySize, len(x.provPost) / 4} {
		head = binary.AppendUvarint(head, uint64(v))
	}
	parts := [][]byte{head, b.blob, b.recs, b.starts, x.names, x.namePost, x.provs, x.provPost}
	for _, p := range parts {
		x.mem += int64(cap(p))
	}
	*b = indexBuilder{}
	return x, parts
}

// encodeIndex encodes a parsed index in one buffer (Suite and URI are
// not stored: they belong to the source, not the content).
func encodeIndex(list []IndexPackage) []byte {
	b := newIndexBuilder(0)
	for i := range list {
		b.add(&list[i])
	}
	_, parts := b.finish()
	return bytes.Join(parts, nil)
}

var errIndexCodec = errors.New("parsed index: malformed")

// packageIndex is a loaded parsed index: immutable, safe for concurrent
// use, and shared by every Repo of the process that uses the same index
// (see parsedIndexes). Its packages are decoded on demand into values
// their caller owns, so no caller can change what another sees.
type packageIndex struct {
	mem      int64 // bytes held: the encoding, whose parts the fields below are
	blob     string
	recs     []byte
	starts   []byte
	names    []byte
	namePost []byte
	provs    []byte
	provPost []byte
}

// loadIndex checks the encoding data and returns the index it holds. The
// strings it gives share data's memory (no copy of a blob of tens of MB):
// data must not change afterwards.
func loadIndex(data []byte) (*packageIndex, error) {
	if len(data) < len(indexMagic) || string(data[:len(indexMagic)]) != indexMagic {
		return nil, fmt.Errorf("%w: bad magic", errIndexCodec)
	}
	d := data[len(indexMagic):]
	var h [7]uint64
	for i := range h {
		v, n := binary.Uvarint(d)
		if n <= 0 || v > 1<<32-1 {
			return nil, fmt.Errorf("%w: header", errIndexCodec)
		}
		h[i], d = v, d[n:]
	}
	count, blobLen, recLen, nNames, nNamePost, nProvs, nProvPost := h[0], h[1], h[2], h[3], h[4], h[5], h[6]
	if count > maxIndexPackages {
		return nil, fmt.Errorf("%w: package count", errIndexCodec)
	}
	idx := &packageIndex{mem: int64(cap(data))}
	var err error
	take := func(n uint64) []byte {
		if err != nil || n > uint64(len(d)) {
			err = fmt.Errorf("%w: truncated", errIndexCodec)
			return nil
		}
		b := d[:n:n]
		d = d[n:]
		return b
	}
	blob := take(blobLen)
	idx.recs = take(recLen)
	idx.starts = take(4 * count)
	idx.names = take(dirEntrySize * nNames)
	idx.namePost = take(4 * nNamePost)
	idx.provs = take(dirEntrySize * nProvs)
	idx.provPost = take(4 * nProvPost)
	if err != nil {
		return nil, err
	}
	if len(d) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errIndexCodec, len(d))
	}
	if len(blob) > 0 {
		idx.blob = unsafe.String(&blob[0], len(blob))
	}
	for i := range int(count) {
		if _, err := idx.decode(i); err != nil {
			return nil, err
		}
	}
	if err := idx.checkDir(idx.names, idx.namePost, int(count)); err != nil {
		return nil, fmt.Errorf("%w: names: %w", errIndexCodec, err)
	}
	if err := idx.checkDir(idx.provs, idx.provPost, int(count)); err != nil {
		return nil, fmt.Errorf("%w: provides: %w", errIndexCodec, err)
	}
	return idx, nil
}

// checkDir checks a directory: keys inside the blob, sorted and
// distinct, postings inside post, package numbers below count and
// ascending under each key.
func (x *packageIndex) checkDir(dir, post []byte, count int) error {
	prev := ""
	for i := 0; i < len(dir)/dirEntrySize; i++ {
		off, n, first, posts := x.dirEntry(dir, i)
		if uint64(off)+uint64(n) > uint64(len(x.blob)) || n == 0 {
			return fmt.Errorf("entry %d: key outside the blob", i)
		}
		key := x.blob[off : off+n]
		if i > 0 && key <= prev {
			return fmt.Errorf("entry %d: keys out of order", i)
		}
		prev = key
		if posts == 0 || uint64(first)+uint64(posts) > uint64(len(post)/4) {
			return fmt.Errorf("entry %d: postings outside the table", i)
		}
		last := -1
		for j := first; j < first+posts; j++ {
			p := int(binary.LittleEndian.Uint32(post[4*j:]))
			if p >= count || p <= last {
				return fmt.Errorf("entry %d: bad package number", i)
			}
			last = p
		}
	}
	return nil
}

func (x *packageIndex) dirEntry(dir []byte, i int) (off, n, first, posts uint32) {
	e := dir[i*dirEntrySize:]
	return binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:]),
		binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])
}

// Len is the number of packages.
func (x *packageIndex) Len() int { return len(x.starts) / 4 }

// bytes is what the index holds in memory.
func (x *packageIndex) bytes() int64 { return x.mem }

// decode returns package i (Suite and URI empty).
func (x *packageIndex) decode(i int) (IndexPackage, error) {
	var p IndexPackage
	start := int(binary.LittleEndian.Uint32(x.starts[4*i:]))
	if start > len(x.recs) {
		return p, fmt.Errorf("%w: package %d", errIndexCodec, i)
	}
	d := x.recs[start:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(d)
		if n <= 0 {
			return 0, false
		}
		d = d[n:]
		return v, true
	}
	for _, f := range indexStrings(&p) {
		off, ok1 := next()
		n, ok2 := next()
		if !ok1 || !ok2 || off > uint64(len(x.blob)) || n > uint64(len(x.blob))-off {
			return p, fmt.Errorf("%w: package %d", errIndexCodec, i)
		}
		*f = x.blob[off : off+n]
	}
	for _, v := range []*int64{&p.Size, &p.InstalledSize} {
		n := 0
		if *v, n = binary.Varint(d); n <= 0 {
			return p, fmt.Errorf("%w: package %d", errIndexCodec, i)
		}
		d = d[n:]
	}
	return p, nil
}

// At returns package i, a copy the caller owns (Suite and URI empty).
// Its strings are copied out of the index, in one allocation: a string
// pointing into the blob keeps the whole index (tens of MB) alive, and
// a few of them (a candidate's version in a plan kept for a run) held
// two or three main indexes in a workflow's heap after their patches
// were done, past the LRU's bound.
func (x *packageIndex) At(i int) IndexPackage {
	p, err := x.decode(i)
	if err != nil {
		panic(err) // loadIndex decoded every package already
	}
	fields := indexStrings(&p)
	n := 0
	for _, f := range fields {
		n += len(*f)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, f := range fields {
		sb.WriteString(*f)
	}
	all, off := sb.String(), 0
	for _, f := range fields {
		*f, off = all[off:off+len(*f)], off+len(*f)
	}
	return p
}

// lookup returns the package numbers under key in a directory, in index
// order (nil: none).
func (x *packageIndex) lookup(dir, post []byte, key string) []uint32 {
	n := len(dir) / dirEntrySize
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		off, l, _, _ := x.dirEntry(dir, m)
		if x.blob[off:off+l] < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == n {
		return nil
	}
	off, l, first, posts := x.dirEntry(dir, lo)
	if x.blob[off:off+l] != key {
		return nil
	}
	out := make([]uint32, posts)
	for j := range out {
		out[j] = binary.LittleEndian.Uint32(post[4*(int(first)+j):])
	}
	return out
}

// Named returns the numbers of the packages called name, in index order.
func (x *packageIndex) Named(name string) []uint32 { return x.lookup(x.names, x.namePost, name) }

// Providing returns the numbers of the packages whose Provides field
// names virtual (a superset: the field is not parsed further), in index
// order.
func (x *packageIndex) Providing(virtual string) []uint32 {
	return x.lookup(x.provs, x.provPost, virtual)
}

// decodeIndex decodes every package of an encoding (the eager path:
// tests, and callers that want all of them).
func decodeIndex(data []byte) ([]IndexPackage, error) {
	x, err := loadIndex(data)
	if err != nil {
		return nil, err
	}
	list := make([]IndexPackage, x.Len())
	for i := range list {
		list[i] = x.At(i)
	}
	return list, nil
}
