package rootfs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/drydock-project/drydock/internal/refusal"
)

// A layer is read from its compressed bytes, which are hashed against the
// manifest's digest (and counted against its size), then decompressed here
// and hashed again against the config's diff_id. A mismatch of either is a
// corrupt image: what would be judged is not what the image names.

// digestReader hashes and counts what is read through it and remembers how
// the stream ended.
type digestReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	end error // the first error r returned, io.EOF included
}

func (d *digestReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.h.Write(p[:n])
	d.n += int64(n)
	if err != nil && d.end == nil {
		d.end = err
	}
	return n, err
}

func (d *digestReader) sum(alg string) v1.Hash {
	return v1.Hash{Algorithm: alg, Hex: hex.EncodeToString(d.h.Sum(nil))}
}

// layerStream is one layer being read: its compressed bytes verified, its
// uncompressed bytes hashed.
type layerStream struct {
	idx    int
	digest v1.Hash // manifest digest of the compressed bytes
	size   int64   // manifest size of the compressed bytes; -1 unknown
	diffID v1.Hash // config diff_id of the uncompressed bytes
	rc     io.ReadCloser
	comp   *digestReader
	plain  *digestReader // the decompressed stream
	closer func()        // releases the decompressor
}

// openLayer opens l's compressed stream and its decompression.
func openLayer(idx int, l v1.Layer, diffID v1.Hash) (*layerStream, error) {
	s := &layerStream{idx: idx, diffID: diffID, size: -1, closer: func() {}}
	var err error
	if s.digest, err = l.Digest(); err != nil {
		return nil, fmt.Errorf("reading the layer digest: %w", err)
	}
	if n, err := l.Size(); err == nil {
		s.size = n
	}
	hc, err := v1.Hasher(s.digest.Algorithm)
	if err != nil {
		return nil, s.corrupt("", fmt.Errorf("digest %s: %w", s.digest, err))
	}
	hp, err := v1.Hasher(diffID.Algorithm)
	if err != nil {
		return nil, s.corrupt("", fmt.Errorf("diff_id %q: %w", diffID, err))
	}
	if s.rc, err = l.Compressed(); err != nil {
		return nil, fmt.Errorf("opening the layer: %w", err)
	}
	s.comp = &digestReader{r: s.rc, h: hc}
	br := bufio.NewReaderSize(s.comp, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		s.rc.Close()
		return nil, s.classify(context.Background(), "", fmt.Errorf("reading the layer: %w", err))
	}
	var plain io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			s.rc.Close()
			return nil, s.classify(context.Background(), "", fmt.Errorf("gzip: %w", err))
		}
		plain, s.closer = zr, func() { zr.Close() }
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			s.rc.Close()
			return nil, s.classify(context.Background(), "", fmt.Errorf("zstd: %w", err))
		}
		plain, s.closer = zr, zr.Close
	}
	s.plain = &digestReader{r: plain, h: hp}
	return s, nil
}

// Close releases the streams.
func (s *layerStream) Close() {
	s.closer()
	s.rc.Close()
}

// finish reads what is left of both streams and checks the digests.
func (s *layerStream) finish(ctx context.Context) error {
	if _, err := io.Copy(io.Discard, s.plain); err != nil {
		return s.classify(ctx, "", fmt.Errorf("reading the layer to its end: %w", err))
	}
	s.drain()
	if err := s.checkCompressed(); err != nil {
		return err
	}
	if s.comp.end != io.EOF {
		return fmt.Errorf("reading the layer: %w", s.comp.end)
	}
	if got := s.plain.sum(s.diffID.Algorithm); got != s.diffID {
		return s.corrupt("", fmt.Errorf("its uncompressed content hashes to %s but the image config's rootfs.diff_ids says %s", got, s.diffID))
	}
	return nil
}

// drain reads the compressed stream to its end (at most one byte past the
// manifest size), so that its digest can be checked.
func (s *layerStream) drain() {
	if s.comp.end != nil || s.size < 0 {
		return // ended, or nothing to check the bytes against
	}
	if limit := s.size - s.comp.n + 1; limit > 0 {
		io.Copy(io.Discard, io.LimitReader(s.comp, limit))
	}
	if s.comp.end == nil && s.size >= 0 && s.comp.n > s.size {
		s.comp.end = io.EOF // longer than the manifest says: a mismatch below
	}
}

// checkCompressed compares the compressed bytes read with the manifest's
// digest and size, once they have all been read: the stream ended (an
// io.EOF, or the source's own verification error once every byte came).
func (s *layerStream) checkCompressed() error {
	complete := s.comp.end == io.EOF || (s.comp.end != nil && s.size >= 0 && s.comp.n >= s.size)
	if !complete {
		return nil
	}
	if s.size >= 0 && s.comp.n != s.size {
		return s.corrupt("", fmt.Errorf("its blob is %d bytes but the manifest says %d", s.comp.n, s.size))
	}
	if got := s.comp.sum(s.digest.Algorithm); got != s.digest {
		return s.corrupt("", fmt.Errorf("its blob hashes to %s, not to the digest the manifest names", got))
	}
	return nil
}

// verified reports whether the compressed bytes were all read and are the
// ones the manifest names.
func (s *layerStream) verified() bool {
	return s.comp.end == io.EOF && (s.size < 0 || s.comp.n == s.size) && s.comp.sum(s.digest.Algorithm) == s.digest
}

// classify turns an error met while reading the layer's content into what
// it is. Over a limit: a refusal of that kind. A context error: itself.
// Otherwise the rest of the compressed stream is read: when it is not the
// blob the manifest names, the image is corrupt; when it is, the bytes are
// exactly those named, so the failure (a bad tar, a bad gzip stream) will
// recur on every read and the image is corrupt too; when the stream itself
// failed, the error is returned as it is (a read that may succeed later).
func (s *layerStream) classify(ctx context.Context, entry string, err error) error {
	if errors.Is(err, ErrLimit) {
		return s.refuse(refusal.OverLimit, entry, err)
	}
	if ctx.Err() != nil {
		return s.layerErr(entry, err)
	}
	s.drain()
	if cerr := s.checkCompressed(); cerr != nil {
		return cerr
	}
	if s.verified() {
		return s.corrupt(entry, err)
	}
	return s.layerErr(entry, err)
}

func (s *layerStream) layerErr(entry string, err error) *LayerError {
	return &LayerError{Index: s.idx, Digest: s.digest, Entry: entry, Err: err}
}

func (s *layerStream) corrupt(entry string, err error) error {
	return s.refuse(refusal.Corrupt, entry, err)
}

func (s *layerStream) refuse(kind refusal.Kind, entry string, err error) error {
	le := s.layerErr(entry, err)
	return &refusal.Error{Kind: kind, Reason: le.Error(), Digest: s.digest.String(), Entry: entry, Err: le}
}
