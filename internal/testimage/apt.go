package testimage

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
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// indexFile is one file listed in a Release file.
type indexFile struct {
	name   string
	sha256 string
	size   int64
}

// fetchPackages downloads dists/<suite>/<component>/binary-<arch>/Packages
// (gzip when offered, else plain) from an archive into the cache, verified
// against the suite's InRelease hashes, and returns its cached path.
//
// InRelease is fetched every time (it moves); the index is cached by hash.
// The signature is not checked: tests trust the machine's mirror, and the
// hash chain guards against truncated or corrupt downloads.
func fetchPackages(ctx context.Context, o *options, base, suite, component, arch string) (string, error) {
	rel, err := fetchRelease(ctx, base, suite)
	if err != nil {
		return "", err
	}
	prefix := component + "/binary-" + arch + "/Packages"
	var pick *indexFile
	// Security archives serve only .xz (the plain name is listed for
	// verification but not served).
	for _, name := range []string{prefix + ".gz", prefix + ".xz", prefix} {
		if f, ok := rel[name]; ok {
			pick = &f
			break
		}
	}
	if pick == nil {
		return "", fmt.Errorf("release %s/dists/%s: no %s(.gz)", base, suite, prefix)
	}
	dst := filepath.Join(o.root(), "apt", "indexes", pick.sha256+path.Ext(pick.name))
	url := base + "/dists/" + suite + "/" + pick.name
	if err := download(ctx, url, dst, pick.sha256, pick.size); err != nil {
		return "", err
	}
	return dst, nil
}

// fetchRelease reads the SHA256 section of dists/<suite>/InRelease.
func fetchRelease(ctx context.Context, base, suite string) (map[string]indexFile, error) {
	url := base + "/dists/" + suite + "/InRelease"
	body, err := get(ctx, url)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	out := map[string]indexFile{}
	sc := bufio.NewScanner(body)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") {
			in = line == "SHA256:"
			continue
		}
		f := strings.Fields(line)
		if !in || len(f) != 3 {
			continue
		}
		size, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: bad size in %q", url, line)
		}
		out[f[2]] = indexFile{name: f[2], sha256: f[0], size: size}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("parsing %s: no SHA256 hashes", url)
	}
	return out, nil
}

// MirrorReachable checks that the mirror serves the suite's InRelease.
func MirrorReachable(ctx context.Context, m MirrorInfo, suite string) error {
	body, err := get(ctx, m.URI+"/dists/"+suite+"/InRelease")
	if err != nil {
		return err
	}
	return body.Close()
}

func get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("fetching %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// ErrHashMismatch means a download did not match the hash its index gave.
var ErrHashMismatch = errors.New("hash mismatch")

// download fetches url into dst unless dst exists, verifying size and
// SHA-256, and lands it atomically.
func download(ctx context.Context, url, dst, wantSHA string, wantSize int64) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	body, err := get(ctx, url)
	if err != nil {
		return err
	}
	defer body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".dl-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fetching %s: %w", url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantSHA || (wantSize >= 0 && n != wantSize) {
		return fmt.Errorf("fetching %s: got sha256 %s (%d bytes), want %s (%d bytes): %w", url, got, n, wantSHA, wantSize, ErrHashMismatch)
	}
	return os.Rename(tmp.Name(), dst)
}

// eachIndexParagraph streams the paragraphs of a Packages file, plain,
// gzipped or xz-compressed (through the xz program).
func eachIndexParagraph(name string, fn func(Paragraph) error) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 1<<20)
	switch path.Ext(name) {
	case ".gz":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("reading %q: %w", name, err)
		}
		defer zr.Close()
		r = zr
	case ".xz":
		cmd := exec.Command("xz", "--decompress", "--stdout")
		cmd.Stdin = r
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("decompressing %q (apt-get install xz-utils): %w", name, err)
		}
		perr := eachParagraph(out, fn)
		io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("decompressing %q: %w", name, err)
		}
		if perr != nil {
			return fmt.Errorf("parsing %q: %w", name, perr)
		}
		return nil
	}
	if err := eachParagraph(r, fn); err != nil {
		return fmt.Errorf("parsing %q: %w", name, err)
	}
	return nil
}
