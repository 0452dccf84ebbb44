package archive

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	var blob []byte
	type ref struct{ off, n int }
	refs := make([]ref, 0, len(list)*13)
	for i := range list {
		for _, f := range indexStrings(&list[i]) {
			refs = append(refs, ref{len(blob), len(*f)})
			blob = append(blob, *f...)
		}
	}
	out := append([]byte(indexMagic), binary.AppendUvarint(nil, uint64(len(list)))...)
	out = binary.AppendUvarint(out, uint64(len(blob)))
	out = append(out, blob...)
	for i := range list {
		for _, r := range refs[i*13 : i*13+13] {
			out = binary.AppendUvarint(out, uint64(r.off))
			out = binary.AppendUvarint(out, uint64(r.n))
		}
		out = binary.AppendVarint(out, list[i].Size)
		out = binary.AppendVarint(out, list[i].InstalledSize)
	}
	return out
}

var errIndexCodec = errors.New("parsed index: malformed")

// decodeIndex decodes what encodeIndex wrote; every offset is checked.
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
	blob := string(d[:blobLen])
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
