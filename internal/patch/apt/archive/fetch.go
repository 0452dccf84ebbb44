package archive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/drydock-project/drydock/internal/patch/xzdec"
)

// HTTPError is a fetch answered with a status other than 200.
type HTTPError struct {
	URL        string
	StatusCode int
	Status     string
}

func (e *HTTPError) Error() string { return "fetching " + e.URL + ": " + e.Status }

// ErrHashMismatch is wrapped by *HashMismatchError.
var ErrHashMismatch = errors.New("hash mismatch")

// HashMismatchError is a download whose size or SHA256 differs from what the
// signed Release file (for an index) or the index (for a .deb) lists. The
// data is not kept.
type HashMismatchError struct {
	URL                   string
	WantSHA256, GotSHA256 string
	WantSize, GotSize     int64
}

func (e *HashMismatchError) Error() string {
	return fmt.Sprintf("fetching %s: got sha256 %s (%d bytes), want %s (%d bytes): %v",
		e.URL, e.GotSHA256, e.GotSize, e.WantSHA256, e.WantSize, ErrHashMismatch)
}

// Is makes errors.Is(err, ErrHashMismatch) true.
func (e *HashMismatchError) Is(target error) bool { return target == ErrHashMismatch }

// getBody starts a GET of url; the caller closes the body.
func (r *Repo) getBody(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	req.Header.Set("User-Agent", "drydock")
	resp, err := r.o.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &HTTPError{URL: url, StatusCode: resp.StatusCode, Status: resp.Status}
	}
	return resp.Body, nil
}

// getSmall fetches url into memory, refusing more than limit bytes.
func (r *Repo) getSmall(ctx context.Context, url string, limit int64) ([]byte, error) {
	body, err := r.getBody(ctx, url)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("fetching %s: larger than the limit of %d bytes", url, limit)
	}
	return data, nil
}

// fetchVerified makes dst hold the content of one of urls (tried in order
// while they answer 404) whose size and SHA256 must be want. A mismatching
// download is removed and reported as *HashMismatchError.
func (r *Repo) fetchVerified(ctx context.Context, urls []string, dst string, want FileHash) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("creating cache: %w", err)
	}
	body, url, err := r.getFirst(ctx, urls)
	if err != nil {
		return err
	}
	defer body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".fetch-*")
	if err != nil {
		return fmt.Errorf("creating cache file: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	// One byte more than wanted tells a too-long download from a match.
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(body, want.Size+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fetching %s: %w", url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != want.Size || got != want.SHA256 {
		return &HashMismatchError{URL: url, WantSHA256: want.SHA256, GotSHA256: got, WantSize: want.Size, GotSize: n}
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("storing %s: %w", url, err)
	}
	return nil
}

// fileMatches reports whether name exists with the wanted size and SHA256.
// A cached file that does not match is removed.
func fileMatches(name string, want FileHash) (bool, error) {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading cache: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, want.Size+1))
	if err != nil {
		return false, fmt.Errorf("reading cache %s: %w", name, err)
	}
	if n == want.Size && hex.EncodeToString(h.Sum(nil)) == want.SHA256 {
		return true, nil
	}
	f.Close()
	os.Remove(name)
	return false, nil
}

// openIndex opens a cached index file, decompressing by its extension
// (".xz", ".gz" or none) with xzd for xz, bounded to maxIndexUncompressed
// bytes. The caller calls the returned function when done.
func openIndex(name string, xzd xzdec.Decoder) (io.Reader, func() error, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("opening index: %w", err)
	}
	rd, dec, err := decompressor(filepath.Ext(name), bufio.NewReaderSize(f, 256<<10), xzd)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("decompressing index %s: %w", name, err)
	}
	closeFn := func() error {
		dec.Close()
		return f.Close()
	}
	return &boundedReader{r: rd, n: maxIndexUncompressed, name: name}, closeFn, nil
}

// boundedReader fails, rather than truncating, past n bytes: a
// decompression bomb is an error, never a silently shortened index.
type boundedReader struct {
	r    io.Reader
	n    int64
	name string
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		var one [1]byte
		if k, _ := b.r.Read(one[:]); k > 0 {
			return 0, fmt.Errorf("index %s: larger than %d bytes decompressed", b.name, int64(maxIndexUncompressed))
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	k, err := b.r.Read(p)
	b.n -= int64(k)
	return k, err
}
