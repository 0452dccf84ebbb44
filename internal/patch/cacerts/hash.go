package cacerts

import (
	"bytes"
	"crypto/sha1"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ASN.1 universal tags of the string types OpenSSL's asn1_string_canon
// handles (ASN1_MASK_CANON) and of NumericString, copied as is.
const (
	tagUTF8      = 12
	tagNumeric   = 18
	tagPrintable = 19
	tagT61       = 20
	tagIA5       = 22
	tagVisible   = 26
	tagUniversal = 28
	tagBMP       = 30
)

// SubjectHash is OpenSSL's X509_NAME_hash (the "new" hash of OpenSSL >= 1.0,
// `openssl x509 -subject_hash`) of a DER-encoded Name: the first four bytes
// of the SHA-1 of the name's canonical encoding, as a little-endian uint32.
// A name it cannot canonicalize exactly as OpenSSL does is an error wrapping
// ErrUnsupported.
func SubjectHash(rawName []byte) (uint32, error) {
	c, err := CanonicalName(rawName)
	if err != nil {
		return 0, err
	}
	sum := sha1.Sum(c)
	return binary.LittleEndian.Uint32(sum[:4]), nil
}

// CanonicalName is OpenSSL's x509_name_canon: every RDN is re-encoded as a
// DER SET OF AttributeTypeAndValue (sorted as DER sorts), with the string
// values of the types in ASN1_MASK_CANON converted to UTF8String,
// ASCII-lowercased, leading and trailing whitespace removed and inner runs
// of whitespace collapsed to one space; the SETs are concatenated without
// the outer SEQUENCE. An empty name gives an empty encoding.
func CanonicalName(rawName []byte) ([]byte, error) {
	var name asn1.RawValue
	rest, err := asn1.Unmarshal(rawName, &name)
	if err != nil || len(rest) != 0 || name.Class != asn1.ClassUniversal || name.Tag != asn1.TagSequence || !name.IsCompound {
		return nil, fmt.Errorf("%w: name is not a DER SEQUENCE", ErrUnsupported)
	}
	var out []byte
	for body := name.Bytes; len(body) > 0; {
		var rdn asn1.RawValue
		if body, err = asn1.Unmarshal(body, &rdn); err != nil {
			return nil, fmt.Errorf("%w: name: %v", ErrUnsupported, err)
		}
		if rdn.Class != asn1.ClassUniversal || rdn.Tag != asn1.TagSet || !rdn.IsCompound || len(rdn.Bytes) == 0 {
			return nil, fmt.Errorf("%w: name: RDN is not a non-empty SET", ErrUnsupported)
		}
		var atvs [][]byte
		for set := rdn.Bytes; len(set) > 0; {
			var atv asn1.RawValue
			if set, err = asn1.Unmarshal(set, &atv); err != nil {
				return nil, fmt.Errorf("%w: name: %v", ErrUnsupported, err)
			}
			c, err := canonATV(atv)
			if err != nil {
				return nil, err
			}
			atvs = append(atvs, c)
		}
		// DER SET OF order, as OpenSSL's der_cmp: bytes, then length.
		sort.Slice(atvs, func(i, j int) bool { return bytes.Compare(atvs[i], atvs[j]) < 0 })
		out = appendTLV(out, 0x31, bytes.Join(atvs, nil))
	}
	return out, nil
}

// canonATV re-encodes one AttributeTypeAndValue canonically.
func canonATV(atv asn1.RawValue) ([]byte, error) {
	if atv.Class != asn1.ClassUniversal || atv.Tag != asn1.TagSequence || !atv.IsCompound {
		return nil, fmt.Errorf("%w: name: attribute is not a SEQUENCE", ErrUnsupported)
	}
	var oid, val asn1.RawValue
	rest, err := asn1.Unmarshal(atv.Bytes, &oid)
	if err == nil {
		rest, err = asn1.Unmarshal(rest, &val)
	}
	if err != nil || len(rest) != 0 || oid.Class != asn1.ClassUniversal || oid.Tag != asn1.TagOID || oid.IsCompound || len(oid.Bytes) == 0 {
		return nil, fmt.Errorf("%w: name: malformed attribute", ErrUnsupported)
	}
	if val.Class != asn1.ClassUniversal || val.IsCompound {
		return nil, fmt.Errorf("%w: name: attribute value of class %d tag %d", ErrUnsupported, val.Class, val.Tag)
	}
	var body []byte
	switch val.Tag {
	case tagNumeric:
		body = appendTLV(nil, byte(val.Tag), val.Bytes)
	case tagUTF8, tagPrintable, tagT61, tagIA5, tagVisible, tagUniversal, tagBMP:
		u, err := toUTF8(val.Tag, val.Bytes)
		if err != nil {
			return nil, err
		}
		body = appendTLV(nil, tagUTF8, canonString(u))
	default:
		return nil, fmt.Errorf("%w: name: attribute value type %d", ErrUnsupported, val.Tag)
	}
	return appendTLV(nil, 0x30, append(append([]byte(nil), oid.FullBytes...), body...)), nil
}

// toUTF8 is ASN1_STRING_to_UTF8: one-byte types are Latin-1, BMPString is
// UCS-2 and UniversalString UCS-4, both big-endian. Anything OpenSSL might
// treat differently (surrogates, code points above U+10FFFF, ragged
// lengths, invalid UTF-8) is refused.
func toUTF8(tag int, b []byte) ([]byte, error) {
	bad := func(what string) error {
		return fmt.Errorf("%w: name: %s in string of type %d", ErrUnsupported, what, tag)
	}
	var out []byte
	switch tag {
	case tagUTF8:
		if !utf8.Valid(b) {
			return nil, bad("invalid UTF-8")
		}
		return b, nil
	case tagBMP:
		if len(b)%2 != 0 {
			return nil, bad("odd length")
		}
		for i := 0; i < len(b); i += 2 {
			r := rune(binary.BigEndian.Uint16(b[i:]))
			if utf16.IsSurrogate(r) {
				return nil, bad("surrogate")
			}
			out = utf8.AppendRune(out, r)
		}
	case tagUniversal:
		if len(b)%4 != 0 {
			return nil, bad("ragged length")
		}
		for i := 0; i < len(b); i += 4 {
			v := binary.BigEndian.Uint32(b[i:])
			if v > utf8.MaxRune || utf16.IsSurrogate(rune(v)) {
				return nil, bad("invalid code point")
			}
			out = utf8.AppendRune(out, rune(v))
		}
	default:
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
	}
	return out, nil
}

// isSpace is OpenSSL's ossl_isspace (ASCII only).
func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// canonString is the in-place loop of asn1_string_canon.
func canonString(s []byte) []byte {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= 0x80:
			out = append(out, c)
			i++
		case isSpace(c):
			out = append(out, ' ')
			for i < len(s) && isSpace(s[i]) {
				i++
			}
		default:
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			out = append(out, c)
			i++
		}
	}
	return out
}

// appendTLV appends a DER tag, definite length and contents.
func appendTLV(dst []byte, tag byte, content []byte) []byte {
	dst = append(dst, tag)
	n := len(content)
	switch {
	case n < 0x80:
		dst = append(dst, byte(n))
	default:
		var l []byte
		for ; n > 0; n >>= 8 {
			l = append([]byte{byte(n)}, l...)
		}
		dst = append(append(dst, 0x80|byte(len(l))), l...)
	}
	return append(dst, content...)
}

// certSubject returns the DER subject Name of a DER certificate.
func certSubject(der []byte) ([]byte, error) {
	var cert struct {
		TBS    asn1.RawValue
		SigAlg asn1.RawValue
		Sig    asn1.BitString
	}
	rest, err := asn1.Unmarshal(der, &cert)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: certificate is not DER", ErrUnsupported)
	}
	body := cert.TBS.Bytes
	var f asn1.RawValue
	// version [0] (optional), serial, signature, issuer, validity, subject.
	for i := 0; i < 6; i++ {
		if body, err = asn1.Unmarshal(body, &f); err != nil {
			return nil, fmt.Errorf("%w: certificate: %v", ErrUnsupported, err)
		}
		if i == 0 && !(f.Class == asn1.ClassContextSpecific && f.Tag == 0) {
			i++ // no version: this was the serial
		}
	}
	return f.FullBytes, nil
}

// pemCert is what rehash learns from one file: whether it holds exactly one
// certificate, and that certificate's subject hash and SHA-1 fingerprint.
type pemCert struct {
	single bool
	hash   uint32
	digest [sha1.Size]byte
}

// readPEM classifies a file as openssl rehash does (PEM_X509_INFO_read_bio,
// then "exactly one certificate or CRL"). Contents whose outcome depends on
// OpenSSL details this package does not reproduce (CRLs, keys, trusted
// certificates, other PEM types, PEM headers, blocks Go cannot decode) are
// refused with ErrUnsupported. Files without any PEM block are not
// certificates (single is false).
func readPEM(data []byte) (pemCert, error) {
	var blocks []*pem.Block
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	begins := bytes.Count(data, []byte("-----BEGIN"))
	if begins != len(blocks) {
		return pemCert{}, fmt.Errorf("%w: %d PEM BEGIN lines but %d decodable blocks", ErrUnsupported, begins, len(blocks))
	}
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" && b.Type != "X509 CERTIFICATE" {
			return pemCert{}, fmt.Errorf("%w: PEM block %s", ErrUnsupported, strconv.Quote(b.Type))
		}
		if len(b.Headers) != 0 {
			return pemCert{}, fmt.Errorf("%w: PEM block with headers", ErrUnsupported)
		}
	}
	if len(blocks) != 1 {
		// rehash skips it ("does not contain exactly one certificate"),
		// whether or not the certificates parse.
		return pemCert{}, nil
	}
	subj, err := certSubject(blocks[0].Bytes)
	if err != nil {
		return pemCert{}, err
	}
	h, err := SubjectHash(subj)
	if err != nil {
		return pemCert{}, err
	}
	return pemCert{single: true, hash: h, digest: sha1.Sum(blocks[0].Bytes)}, nil
}

// maxCollisions is rehash.c's MAX_COLLISIONS.
const maxCollisions = 256

// hentry is one file or existing hash link of a rehash bucket.
type hentry struct {
	filename string
	oldID    int // 0xffff: no existing link (unsigned short ~0)
	need     bool
	digest   [sha1.Size]byte
}

// bucket holds the entries of one (type, hash); type 1 is CRLs ("r").
type bucket struct {
	crl     bool
	hash    uint32
	entries []*hentry
	needed  int
}

// rehash is `openssl rehash DIR` (apps/rehash.c of OpenSSL 1.1.1 and 3.x,
// default options): names are visited in strcmp order; a symlink whose name
// is a hash link (8 hex digits, '.', optional 'r', decimal id) records its
// target; any other entry with a .pem/.crt/.cer/.crl extension (any case)
// holding exactly one certificate needs a link. Links whose id is below
// the number of files needing one are kept as they are; other needing
// files get the lowest free ids in visiting order; links not needed are
// removed. A certificate identical (SHA-1) to one already seen in its
// bucket is skipped.
func rehash(v *view, dir string) error {
	names, err := v.list(dir)
	if err != nil {
		return err
	}
	buckets := map[[2]uint32]*bucket{}
	add := func(crl bool, hash uint32, filename string, digest *[sha1.Size]byte, oldID int) error {
		key := [2]uint32{0, hash}
		if crl {
			key[0] = 1
		}
		b := buckets[key]
		if b == nil {
			b = &bucket{crl: crl, hash: hash}
			buckets[key] = b
		}
		var found *hentry
		for _, e := range b.entries {
			if digest != nil && e.need && e.digest == *digest {
				return nil // "warning: skipping duplicate certificate" (exit status 0)
			}
			if e.filename == filename {
				found = e
				if digest == nil {
					break
				}
			}
		}
		if found == nil {
			if b.needed >= maxCollisions {
				return fmt.Errorf("%w: more than %d certificates with hash %08x", ErrUnsupported, maxCollisions, hash)
			}
			found = &hentry{filename: filename, oldID: 0xffff}
			b.entries = append(b.entries, found)
		}
		found.oldID = min(found.oldID, oldID)
		if digest != nil && !found.need {
			found.need = true
			found.digest = *digest
			b.needed++
		}
		return nil
	}
	for _, n := range names {
		p := dir + "/" + n
		k, target, err := v.lstat(p)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrUnsupported, p, err)
		}
		if k == kindLink {
			if h, crl, id, ok, err := parseHashLink(n); err != nil {
				return err
			} else if ok {
				if err := add(crl, h, target, nil, id); err != nil {
					return err
				}
				continue
			}
		}
		dot := strings.LastIndexByte(n, '.')
		if dot < 0 {
			continue
		}
		switch strings.ToLower(n[dot+1:]) {
		case "pem", "crt", "cer", "crl":
		default:
			continue
		}
		data, err := v.readFile(p)
		if err != nil {
			return fmt.Errorf("%w: rehash cannot read %s: %v", ErrUnsupported, p, err)
		}
		pc, err := readPEM(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if !pc.single {
			continue
		}
		if err := add(false, pc.hash, n, &pc.digest, 0xffff); err != nil {
			return err
		}
	}
	keys := make([][2]uint32, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	for _, k := range keys {
		b := buckets[k]
		suffix := ""
		if b.crl {
			suffix = "r"
		}
		used := map[int]bool{}
		for _, e := range b.entries {
			if e.oldID < b.needed {
				used[e.oldID] = true
			}
		}
		next := 0
		for _, e := range b.entries {
			switch {
			case e.oldID < b.needed:
				// kept as is
			case e.need:
				for used[next] {
					next++
				}
				p := fmt.Sprintf("%s/%08x.%s%d", dir, b.hash, suffix, next)
				if k, _, _ := v.lstat(p); k == kindDir {
					return fmt.Errorf("%w: %s is a directory", ErrUnsupported, p)
				}
				v.setLink(p, e.filename)
				used[next] = true
			default:
				v.remove(fmt.Sprintf("%s/%08x.%s%d", dir, b.hash, suffix, e.oldID))
			}
		}
	}
	return nil
}

// parseHashLink is handle_symlink's name test. Names it would read through
// strtoul's leniency (signs, blanks, huge ids, no digits) are refused.
func parseHashLink(name string) (hash uint32, crl bool, id int, ok bool, err error) {
	if len(name) < 9 || name[8] != '.' {
		return 0, false, 0, false, nil
	}
	h, perr := strconv.ParseUint(name[:8], 16, 32)
	if perr != nil || strings.ContainsAny(name[:8], "+-xX_") {
		return 0, false, 0, false, nil
	}
	rest := name[9:]
	if len(rest) > 0 && (rest[0] == 'r' || rest[0] == 'R') {
		crl, rest = true, rest[1:]
	}
	if rest == "" || strings.ContainsAny(rest[:1], "+- \t\n\v\f\r") {
		return 0, false, 0, false, fmt.Errorf("%w: hash link name %q", ErrUnsupported, name)
	}
	if strings.Trim(rest, "0123456789") != "" {
		return 0, false, 0, false, nil // strtoul stops early: not a hash link
	}
	n, perr := strconv.Atoi(rest)
	if perr != nil || n > 255 {
		return 0, false, 0, false, fmt.Errorf("%w: hash link name %q", ErrUnsupported, name)
	}
	return uint32(h), crl, n, true, nil
}
