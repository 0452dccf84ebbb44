package xzdec

import (
	"bytes"
	"fmt"
	"io"
)

// xzGuard passes an xz stream through unchanged while walking its container
// structure (stream headers, stream padding, block headers, LZMA2 chunk
// headers, indexes), and fails before the decoder sees a block header whose
// LZMA2 dictionary exceeds maxDict: github.com/ulikunitz/xz allocates
// whatever dictionary a block header asks for, up to 4 GiB, and the xz
// program up to its memory limit. It also fails on anything but padding or
// another stream after a stream, so that both decoders refuse the same
// trailing data. It does not validate checksums or anything else the
// decoders check themselves.
type xzGuard struct {
	r       io.Reader
	maxDict int64
	pend    []byte // structural bytes read but not yet passed on
	skip    int64  // payload bytes to pass on without looking
	state   int
	streams int
	check   int   // size of the block check field
	block   int64 // bytes of the current block so far
	records uint64
	index   int64 // bytes of the current index so far
	err     error
}

const (
	xzStream = iota // stream header or stream padding
	xzBlock         // block header or index indicator
	xzChunk         // LZMA2 chunk header
	xzRecord        // index record
)

var errXZ = fmt.Errorf("bad container structure: %w", ErrFormat)

func (g *xzGuard) Read(p []byte) (int, error) {
	for len(g.pend) == 0 && g.skip == 0 {
		if g.err != nil {
			return 0, g.err
		}
		if g.err = g.step(); g.err != nil {
			g.pend = nil // never pass on a header we refused
		}
	}
	if len(g.pend) > 0 {
		n := copy(p, g.pend)
		g.pend = g.pend[n:]
		return n, nil
	}
	if int64(len(p)) > g.skip {
		p = p[:g.skip]
	}
	n, err := g.r.Read(p)
	g.skip -= int64(n)
	if err == io.EOF {
		if g.skip > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}

// read appends n structural bytes to pend and returns them.
func (g *xzGuard) read(n int) ([]byte, error) {
	start := len(g.pend)
	g.pend = append(g.pend, make([]byte, n)...)
	k, err := io.ReadFull(g.r, g.pend[start:])
	g.pend = g.pend[:start+k]
	if err != nil {
		if err == io.EOF && (start > 0 || g.state != xzStream) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return g.pend[start:], nil
}

// varint reads one xz multibyte integer.
func (g *xzGuard) varint() (uint64, int, error) {
	var x uint64
	for i := 0; i < 9; i++ {
		b, err := g.read(1)
		if err != nil {
			return 0, 0, err
		}
		x |= uint64(b[0]&0x7f) << (7 * i)
		if b[0]&0x80 == 0 {
			return x, i + 1, nil
		}
	}
	return 0, 0, errXZ
}

func (g *xzGuard) step() error {
	switch g.state {
	case xzStream:
		b, err := g.read(4)
		if err == io.EOF && g.streams > 0 {
			return io.EOF
		}
		if err != nil {
			return err
		}
		if g.streams > 0 && bytes.Equal(b, []byte{0, 0, 0, 0}) {
			return nil // stream padding
		}
		rest, err := g.read(8)
		if err != nil {
			return err
		}
		if !bytes.Equal(b, []byte{0xfd, '7', 'z', 'X'}) || rest[0] != 'Z' || rest[1] != 0 {
			return errXZ
		}
		g.check = [16]int{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}[rest[3]&0x0f]
		g.streams++
		g.state = xzBlock
	case xzBlock:
		b, err := g.read(1)
		if err != nil {
			return err
		}
		if b[0] == 0 { // index indicator
			n, k, err := g.varint()
			if err != nil {
				return err
			}
			g.records, g.index = n, 1+int64(k)
			g.state = xzRecord
			return nil
		}
		return g.blockHeader((int(b[0])+1)*4 - 1)
	case xzChunk:
		b, err := g.read(1)
		if err != nil {
			return err
		}
		c := b[0]
		g.block++
		switch {
		case c == 0: // end of LZMA2 data: block padding, check
			pad := (4 - g.block%4) % 4
			if _, err := g.read(int(pad) + g.check); err != nil {
				return err
			}
			g.state = xzBlock
		case c == 1 || c == 2: // uncompressed chunk
			s, err := g.read(2)
			if err != nil {
				return err
			}
			g.skip = int64(s[0])<<8 | int64(s[1]) + 1
			g.block += 2 + g.skip
		case c >= 0x80: // LZMA chunk
			n := 4
			if c >= 0xc0 {
				n = 5 // with properties byte
			}
			s, err := g.read(n)
			if err != nil {
				return err
			}
			g.skip = int64(s[2])<<8 | int64(s[3]) + 1
			g.block += int64(n) + g.skip
		default:
			return errXZ
		}
	case xzRecord:
		if g.records == 0 {
			pad := (4 - g.index%4) % 4
			if _, err := g.read(int(pad) + 4 + 12); err != nil { // CRC32, footer
				return err
			}
			g.state = xzStream
			return nil
		}
		for range 2 {
			_, k, err := g.varint()
			if err != nil {
				return err
			}
			g.index += int64(k)
		}
		g.records--
	}
	return nil
}

// blockHeader reads the rest of a block header of which the size byte has
// been read, and checks the LZMA2 dictionary size.
func (g *xzGuard) blockHeader(n int) error {
	h, err := g.read(n)
	if err != nil {
		return err
	}
	h = h[:len(h)-4] // CRC32
	flags := h[0]
	i := 1
	uvarint := func() (uint64, bool) {
		var x uint64
		for k := 0; k < 9 && i < len(h); k++ {
			b := h[i]
			i++
			x |= uint64(b&0x7f) << (7 * k)
			if b&0x80 == 0 {
				return x, true
			}
		}
		return 0, false
	}
	for _, bit := range []byte{0x40, 0x80} { // compressed, uncompressed size
		if flags&bit != 0 {
			if _, ok := uvarint(); !ok {
				return errXZ
			}
		}
	}
	var id uint64
	for f := 0; f <= int(flags&3); f++ {
		var ok bool
		if id, ok = uvarint(); !ok {
			return errXZ
		}
		size, ok := uvarint()
		if !ok || size > uint64(len(h)-i) {
			return errXZ
		}
		props := h[i : i+int(size)]
		i += int(size)
		if id == 0x21 {
			if len(props) != 1 || props[0] > 40 {
				return errXZ
			}
			c := props[0]
			dict := int64(1)<<32 - 1
			if c < 40 {
				dict = int64(2|c&1) << (c/2 + 11)
			}
			if dict > g.maxDict {
				return fmt.Errorf("dictionary of %d bytes exceeds %d: %w", dict, g.maxDict, ErrTooLarge)
			}
		}
	}
	if id != 0x21 {
		return errXZ // LZMA2 must be the last filter
	}
	g.block = int64(n) + 1
	g.state = xzChunk
	return nil
}
