package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// The parsed-index encoding: every string of every package in one blob,
// read back as substrings of one string, so loading a parsed index of
// 70,000 packages allocates their structs and one string, not a million
// strings.
//
//	"ddkidx2\n" | uvarint count | uvarint len(blob) | blob |
//	count × (13 × (uvarint offset, uvarint length) | varint Size | varint InstalledSize)

const indexMagic = "ddkidx2\n"

// indexStrings are the string fields stored, in order.
func indexStrings(p *IndexPackage) []*string {
	return []*string{&p.Package, &p.Version, &p.Architecture, &p.Source, &p.SourceVersion, &p.MultiArch,
		&p.Depends, &p.PreDepends, &p.Provides, &p.Breaks, &p.Conflicts, &p.Filename, &p.SHA256}
}

// encodeIndex encodes a parsed index (Suite and URI are not stored: they
// belong to the source, not the content).
func encodeIndex(list []IndexPackage) []byte {
	// Sized exactly up front, and written in one pass: the index of a
	// main suite is tens of MB, and growing buffers of that size by
	// appending (with a table of offsets on the side) was what made a
	// cold run's memory peak.
	var tmp [binary.MaxVarintLen64]byte
	uvarintLen := func(x uint64) int { return len(binary.AppendUvarint(tmp[:0], x)) }
	varintLen := func(x int64) int { return len(binary.AppendVarint(tmp[:0], x)) }
	blobLen, tableLen := 0, 0
	for i := range list {
		for _, f := range indexStrings(&list[i]) {
			tableLen += uvarintLen(uint64(blobLen)) + uvarintLen(uint64(len(*f)))
			blobLen += len(*f)
		}
		tableLen += varintLen(list[i].Size) + varintLen(list[i].InstalledSize)
	}
	head := append([]byte(indexMagic), binary.AppendUvarint(nil, uint64(len(list)))...)
	head = binary.AppendUvarint(head, uint64(blobLen))
	out := make([]byte, len(head)+blobLen+tableLen)
	copy(out, head)
	blob := out[len(head) : len(head)+blobLen]
	table := out[len(head)+blobLen : len(head)+blobLen : len(out)]
	off := 0
	for i := range list {
		for _, f := range indexStrings(&list[i]) {
			table = binary.AppendUvarint(table, uint64(off))
			table = binary.AppendUvarint(table, uint64(len(*f)))
			off += copy(blob[off:], *f)
		}
		table = binary.AppendVarint(table, list[i].Size)
		table = binary.AppendVarint(table, list[i].InstalledSize)
	}
	return out
}

var errIndexCodec = errors.New("parsed index: malformed")

// decodeIndex decodes what encodeIndex wrote; every offset is checked.
// The strings it returns share data's memory (no copy of a blob of tens
// of MB on every run): data must not change afterwards.
func decodeIndex(data []byte) ([]IndexPackage, error) {
	if len(data) < len(indexMagic) || string(data[:len(indexMagic)]) != indexMagic {
		return nil, fmt.Errorf("%w: bad magic", errIndexCodec)
	}
	d := data[len(indexMagic):]
	next := func() (uint64, error) {
		v, n := binary.Uvarint(d)
		if n <= 0 {
			return 0, errIndexCodec
		}
		d = d[n:]
		return v, nil
	}
	count, err := next()
	if err != nil || count > maxIndexPackages {
		return nil, fmt.Errorf("%w: package count", errIndexCodec)
	}
	blobLen, err := next()
	if err != nil || blobLen > uint64(len(d)) {
		return nil, fmt.Errorf("%w: blob", errIndexCodec)
	}
	var blob string
	if blobLen > 0 {
		blob = unsafe.String(&d[0], int(blobLen))
	}
	d = d[blobLen:]
	list := make([]IndexPackage, count)
	for i := range list {
		for _, f := range indexStrings(&list[i]) {
			off, err1 := next()
			n, err2 := next()
			if err1 != nil || err2 != nil || off > uint64(len(blob)) || n > uint64(len(blob))-off {
				return nil, fmt.Errorf("%w: package %d", errIndexCodec, i)
			}
			*f = blob[off : off+n]
		}
		for _, v := range []*int64{&list[i].Size, &list[i].InstalledSize} {
			x, n := binary.Varint(d)
			if n <= 0 {
				return nil, fmt.Errorf("%w: package %d", errIndexCodec, i)
			}
			*v, d = x, d[n:]
		}
	}
	if len(d) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errIndexCodec, len(d))
	}
	return list, nil
}
