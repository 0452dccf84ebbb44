package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// getBlob serves GET and HEAD of a blob linked into the repository. The body
// is streamed from the driver; Range requests are answered with 206 (or 416)
// by http.ServeContent over a seeker that opens the driver reader lazily at
// the requested offset.
func (r *Registry) getBlob(w http.ResponseWriter, req *http.Request, name, ref string) error {
	d, err := digestParam(ref)
	if err != nil {
		return err
	}
	size, err := r.linkedBlob(req.Context(), name, d)
	if errors.Is(err, ErrNotFound) {
		return errBlobUnknown(ref)
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Cache-Control", "max-age=31536000")
	if req.Method == http.MethodHead && req.Header.Get("Range") == "" {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Accept-Ranges", "bytes")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	rs := &driverReadSeeker{ctx: req.Context(), driver: r.driver, path: blobDataPath(d), size: size}
	defer rs.Close()
	http.ServeContent(w, req, "", time.Time{}, rs)
	if rs.err != nil && !errors.Is(rs.err, context.Canceled) {
		r.log.WarnContext(req.Context(), "streaming blob failed", "repo", name, "digest", d, "err", rs.err)
	}
	return nil
}

// deleteBlob unlinks a blob from the repository. The data stays in the
// content-addressed store (other repositories may link it).
func (r *Registry) deleteBlob(w http.ResponseWriter, req *http.Request, name, ref string) error {
	d, err := digestParam(ref)
	if err != nil {
		return err
	}
	ctx := req.Context()
	got, err := r.readLink(ctx, layerLinkPath(name, d))
	if errors.Is(err, ErrNotFound) || (err == nil && got != d) {
		return errBlobUnknown(ref)
	}
	if err != nil {
		return err
	}
	if err := r.deletePath(ctx, layerLinkPath(name, d)); err != nil {
		return fmt.Errorf("unlinking blob %s from %s: %w", d, name, err)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// driverReadSeeker is an io.ReadSeeker over a driver file of known size. It
// opens a driver reader at the current offset on the first Read after a
// Seek, so seeking costs nothing and data is streamed, never buffered.
type driverReadSeeker struct {
	ctx    context.Context
	driver storagedriver.StorageDriver
	path   string
	size   int64
	off    int64
	rc     io.ReadCloser
	err    error // first read error, for logging
}

func (s *driverReadSeeker) Read(p []byte) (int, error) {
	if s.off >= s.size {
		return 0, io.EOF
	}
	if s.rc == nil {
		rc, err := s.driver.Reader(s.ctx, s.path, s.off)
		if err != nil {
			s.err = err
			return 0, fmt.Errorf("opening %s at %d: %w", s.path, s.off, err)
		}
		s.rc = rc
	}
	if rem := s.size - s.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := s.rc.Read(p)
	s.off += int64(n)
	if err == io.EOF && s.off < s.size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

func (s *driverReadSeeker) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = s.off + offset
	case io.SeekEnd:
		abs = s.size + offset
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	if abs != s.off && s.rc != nil {
		_ = s.rc.Close()
		s.rc = nil
	}
	s.off = abs
	return abs, nil
}

func (s *driverReadSeeker) Close() error {
	if s.rc != nil {
		err := s.rc.Close()
		s.rc = nil
		return err
	}
	return nil
}
