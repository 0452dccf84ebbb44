package archive

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"

	"github.com/drydock-project/drydock/internal/patch/xzdec"
)

// getFirst starts a GET of the first of urls that does not answer 404.
func (r *Repo) getFirst(ctx context.Context, urls []string) (io.ReadCloser, string, error) {
	var (
		body io.ReadCloser
		url  string
		err  error
	)
	for _, url = range urls {
		body, err = r.getBody(ctx, url)
		var he *HTTPError
		if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
			continue
		}
		break
	}
	return body, url, err
}

// decompressor reads r, compressed as the index file extension ext
// (".xz", ".gz" or none) says, xz with xzd. The caller closes the
// decompressor once done, before reading r again.
func decompressor(ext string, r io.Reader, xzd xzdec.Decoder) (io.Reader, io.Closer, error) {
	switch ext {
	case ".xz":
		z, err := xzd.NewReader(r, maxIndexXZDict)
		return z, z, err
	case ".gz":
		z, err := gzip.NewReader(r)
		return z, z, err
	}
	return r, io.NopCloser(nil), nil
}

// streamIndex fetches the compressed index packed (from the first of urls
// that has it) and, as it arrives, decompresses it into dst and parses
// it: the network, the decompression and the parse overlap instead of
// following one another. Nothing is trusted before the end: the
// compressed bytes must match packed and the decompressed ones plain (the
// signed Release's entries), else dst is not written and the parse is
// thrown away. The parse is encoded as it goes (see indexBuilder). name
// (the index's URL) is used in errors.
func (r *Repo) streamIndex(ctx context.Context, urls []string, dst string, packed, plain FileHash, name string) (*indexBuilder, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, fmt.Errorf("creating cache: %w", err)
	}
	body, url, err := r.getFirst(ctx, urls)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".plain-*")
	if err != nil {
		return nil, fmt.Errorf("creating cache file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	// One byte more than the Release says tells a too-long download.
	packedSum := &hashCounter{h: sha256.New()}
	src := io.TeeReader(io.LimitReader(body, packed.Size+1), packedSum)
	dec, decCloser, err := decompressor(path.Ext(packed.Path), bufio.NewReaderSize(src, 256<<10), r.o.xz)
	if err != nil {
		return nil, fmt.Errorf("decompressing index %s: %w", name, err)
	}
	pr, pw := io.Pipe()
	parsed := make(chan parseResult, 1)
	go func() {
		b := newIndexBuilder(blobHint(plain.Size))
		err := parsePackages(pr, name, b.add)
		// A parser that stops early must not block the download: the
		// rest is still read, hashed and stored, then refused below.
		pr.CloseWithError(errParseEnded)
		parsed <- parseResult{b, err}
	}()
	plainSum := &hashCounter{h: sha256.New()}
	_, err = io.Copy(io.MultiWriter(tmp, plainSum, &toParser{w: pw}), &boundedReader{r: dec, n: maxIndexUncompressed, name: name})
	// The decompressor (an xz process and its feeder) stops reading src.
	decCloser.Close()
	pw.CloseWithError(err) // nil: the parser reads EOF
	res := <-parsed
	// Whatever follows the compressed stream (or was left when it broke)
	// is part of what the Release signs: read it, so that a wrong
	// download is told as such rather than as a broken stream.
	if _, derr := io.Copy(io.Discard, src); derr != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, derr)
	}
	if got := packedSum.sum(); packedSum.n != packed.Size || got != packed.SHA256 {
		return nil, &HashMismatchError{URL: url, WantSHA256: packed.SHA256, GotSHA256: got, WantSize: packed.Size, GotSize: packedSum.n}
	}
	if err != nil {
		return nil, fmt.Errorf("decompressing index %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("storing index %s: %w", name, err)
	}
	if got := plainSum.sum(); plainSum.n != plain.Size || got != plain.SHA256 {
		return nil, &HashMismatchError{URL: name + " (decompressed)", WantSHA256: plain.SHA256, GotSHA256: got, WantSize: plain.Size, GotSize: plainSum.n}
	}
	if res.err != nil {
		return nil, res.err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return nil, fmt.Errorf("storing index %s: %w", name, err)
	}
	return res.b, nil
}

type parseResult struct {
	b   *indexBuilder
	err error
}

// blobHint is the room an index builder's blob starts with for a plain
// index of plainSize bytes: a little more than the kept fields take
// (bookworm's main: 23.2 MB of 56.6 MB, 41%), within a bound (Debian's
// largest plain index, sid's main, is about 70 MB). Room never used
// still counts in the heap the collector paces on.
func blobHint(plainSize int64) int {
	return int(min(plainSize*9/20, 64<<20))
}

var errParseEnded = errors.New("the parser has ended")

// toParser feeds the parser until it ends, then swallows what is left.
type toParser struct {
	w     io.Writer
	ended bool
}

func (t *toParser) Write(p []byte) (int, error) {
	if !t.ended {
		if _, err := t.w.Write(p); err != nil {
			t.ended = true
		}
	}
	return len(p), nil
}

// hashCounter hashes and counts what is written to it.
type hashCounter struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

func (c *hashCounter) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }
