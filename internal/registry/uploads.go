package registry

import (
	"context"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/imgref"
)

// An upload lives in <repo>/_uploads/<id>/: "startedat" (its existence is the
// upload's existence), "data" (appended chunk by chunk) and "hashstate" (the
// marshalled running hash and the offset it covers). The hash state lets a
// chunk continue the digest computation in any process without re-reading
// the data; if a crash left more data than the state covers, only the tail
// is re-read.
type upload struct {
	name, id  string
	startedAt time.Time
	alg       digest.Algorithm
	hash      hash.Hash
	size      int64 // bytes in data, all covered by hash
}

type hashStateFile struct {
	Algorithm string `json:"algorithm"`
	Offset    int64  `json:"offset"`
	State     []byte `json:"state"`
}

func (r *Registry) createUpload(ctx context.Context, name string, alg digest.Algorithm) (*upload, error) {
	u := &upload{name: name, id: newUploadID(), startedAt: r.clock.Now().UTC(), alg: alg, hash: alg.Hash()}
	if err := r.driver.PutContent(ctx, uploadStartedAtPath(name, u.id), []byte(u.startedAt.Format(time.RFC3339Nano))); err != nil {
		return nil, fmt.Errorf("starting upload in %s: %w", name, err)
	}
	if err := r.saveHashState(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

func (r *Registry) saveHashState(ctx context.Context, u *upload) error {
	m, ok := u.hash.(encoding.BinaryMarshaler)
	if !ok {
		return fmt.Errorf("hash %s cannot be marshalled", u.alg)
	}
	st, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("marshalling %s hash state: %w", u.alg, err)
	}
	b, err := json.Marshal(hashStateFile{Algorithm: u.alg.String(), Offset: u.size, State: st})
	if err != nil {
		return fmt.Errorf("encoding hash state: %w", err)
	}
	return r.putAtomic(ctx, uploadHashStatePath(u.name, u.id), b)
}

// loadUpload restores an upload and its running hash, reconciling the hash
// with the data actually on the driver.
func (r *Registry) loadUpload(ctx context.Context, name, id string) (*upload, error) {
	b, err := r.driver.GetContent(ctx, uploadStartedAtPath(name, id))
	if err != nil {
		if isNotFound(err) {
			return nil, errUploadUnknown(id)
		}
		return nil, fmt.Errorf("reading upload %s: %w", id, err)
	}
	u := &upload{name: name, id: id, alg: digest.SHA256}
	u.startedAt, _ = time.Parse(time.RFC3339Nano, string(b))

	var offset int64
	if sb, err := r.driver.GetContent(ctx, uploadHashStatePath(name, id)); err == nil {
		var st hashStateFile
		if json.Unmarshal(sb, &st) == nil {
			if alg := digest.Algorithm(st.Algorithm); alg == digest.SHA256 || alg == digest.SHA512 {
				h := alg.Hash()
				if um, ok := h.(encoding.BinaryUnmarshaler); ok && um.UnmarshalBinary(st.State) == nil {
					u.alg, u.hash, offset = alg, h, st.Offset
				}
			}
		}
	} else if !isNotFound(err) {
		return nil, fmt.Errorf("reading upload %s hash state: %w", id, err)
	}
	if u.hash == nil {
		u.hash = u.alg.Hash()
	}

	size := int64(0)
	if fi, err := r.driver.Stat(ctx, uploadDataPath(name, id)); err == nil {
		size = fi.Size()
	} else if !isNotFound(err) {
		return nil, fmt.Errorf("stat upload %s data: %w", id, err)
	}
	if offset > size || offset < 0 {
		u.hash, offset = u.alg.Hash(), 0
	}
	if offset < size {
		// A previous request wrote data but died before saving the state.
		rc, err := r.driver.Reader(ctx, uploadDataPath(name, id), offset)
		if err != nil {
			return nil, fmt.Errorf("re-reading upload %s from %d: %w", id, offset, err)
		}
		n, err := io.Copy(u.hash, io.LimitReader(rc, size-offset))
		_ = rc.Close()
		if err != nil || n != size-offset {
			return nil, fmt.Errorf("re-reading upload %s from %d: read %d bytes: %v", id, offset, n, err)
		}
	}
	u.size = size
	return u, nil
}

// appendData appends up to limit bytes of body (all of it if limit < 0) to
// the upload, hashing as it goes, and persists the hash state.
func (r *Registry) appendData(ctx context.Context, u *upload, body io.Reader, limit int64) (int64, error) {
	fw, err := r.driver.Writer(ctx, uploadDataPath(u.name, u.id), true)
	if err != nil {
		return 0, fmt.Errorf("opening upload %s: %w", u.id, err)
	}
	if fw.Size() != u.size {
		_ = fw.Close()
		return 0, fmt.Errorf("upload %s changed underneath: %d bytes, expected %d", u.id, fw.Size(), u.size)
	}
	if limit >= 0 {
		body = io.LimitReader(body, limit)
	}
	n, copyErr := io.Copy(io.MultiWriter(fw, u.hash), body)
	// Keep whatever arrived: the client can resume from the reported range.
	// Close (not Commit) keeps the file appendable on every driver (an S3
	// multipart upload stays open); completeUpload commits it.
	if err := fw.Close(); err != nil {
		return 0, fmt.Errorf("closing upload %s: %w", u.id, err)
	}
	u.size += n
	if err := r.saveHashState(ctx, u); err != nil {
		return n, err
	}
	if copyErr != nil {
		return n, newAPIError(http.StatusBadRequest, codeBlobUploadInvalid, "reading request body failed", copyErr.Error())
	}
	return n, nil
}

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

func rangeHeader(size int64) string {
	end := size - 1
	if end < 0 {
		end = 0
	}
	return "0-" + strconv.FormatInt(end, 10)
}

func setUploadHeaders(w http.ResponseWriter, u *upload) {
	h := w.Header()
	h.Set("Location", uploadLocation(u.name, u.id))
	h.Set("Range", rangeHeader(u.size))
	h.Set("Docker-Upload-UUID", u.id)
	h.Set("Content-Length", "0")
}

// startUpload handles POST /v2/<name>/blobs/uploads/: cross-repository or
// anonymous mount, monolithic upload (?digest=), or a new upload session.
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, name string) error {
	ctx := req.Context()
	q := req.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, err := digestParam(mount)
		if err != nil {
			return err
		}
		ok, err := r.mount(ctx, name, d, q.Get("from"))
		if err != nil {
			return err
		}
		if ok {
			blobCreated(w, name, d)
			return nil
		}
	}
	alg := digest.SHA256
	var want digest.Digest
	if ds := q.Get("digest"); ds != "" {
		d, err := digestParam(ds)
		if err != nil {
			return err
		}
		want, alg = d, d.Algorithm()
	}
	u, err := r.createUpload(ctx, name, alg)
	if err != nil {
		return err
	}
	if want == "" {
		setUploadHeaders(w, u)
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	unlock := r.uploadLocks.lock(name + "/" + u.id)
	defer unlock()
	if _, err := r.appendData(ctx, u, req.Body, -1); err != nil {
		_ = r.deletePath(ctx, uploadDir(name, u.id))
		return err
	}
	return r.completeUpload(ctx, w, u, want)
}

// mount links an existing blob into name: from the repository from when it
// links the blob, or (anonymous, from == "") when the blob exists anywhere.
func (r *Registry) mount(ctx context.Context, name string, d digest.Digest, from string) (bool, error) {
	if from != "" {
		if !imgref.ValidRepository(from) {
			return false, nil
		}
		if _, err := r.linkedBlob(ctx, from, d); err != nil {
			if errors.Is(err, ErrNotFound) {
				return false, nil
			}
			return false, err
		}
	} else if _, err := r.blobSize(ctx, d); err != nil {
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	if err := r.writeLink(ctx, layerLinkPath(name, d), d); err != nil {
		return false, fmt.Errorf("mounting %s into %s: %w", d, name, err)
	}
	return true, nil
}

func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// parseContentRange parses the "<start>-<end>" Content-Range of a chunk.
func parseContentRange(s string) (start, end int64, ok bool) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "bytes"))
	s = strings.TrimLeft(s, " =")
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}

// chunkLimit checks a chunk's Content-Range against the upload and returns
// how many bytes to accept (-1: the whole body).
func chunkLimit(req *http.Request, u *upload) (int64, error) {
	cr := req.Header.Get("Content-Range")
	if cr == "" {
		return -1, nil
	}
	start, end, ok := parseContentRange(cr)
	if !ok || start != u.size {
		e := newAPIError(http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, "invalid content range",
			map[string]string{"content-range": cr, "expected-start": strconv.FormatInt(u.size, 10)})
		e.header = http.Header{}
		e.header.Set("Location", uploadLocation(u.name, u.id))
		e.header.Set("Range", rangeHeader(u.size))
		e.header.Set("Docker-Upload-UUID", u.id)
		return 0, e
	}
	n := end - start + 1
	if req.ContentLength >= 0 && req.ContentLength != n {
		return 0, newAPIError(http.StatusBadRequest, codeSizeInvalid, "Content-Length does not match Content-Range",
			map[string]string{"content-range": cr, "content-length": strconv.FormatInt(req.ContentLength, 10)})
	}
	return n, nil
}

func (r *Registry) patchUpload(w http.ResponseWriter, req *http.Request, name, id string) error {
	ctx := req.Context()
	unlock := r.uploadLocks.lock(name + "/" + id)
	defer unlock()
	u, err := r.loadUpload(ctx, name, id)
	if err != nil {
		return err
	}
	limit, err := chunkLimit(req, u)
	if err != nil {
		return err
	}
	n, err := r.appendData(ctx, u, req.Body, limit)
	if err != nil {
		return err
	}
	if limit >= 0 && n != limit {
		return newAPIError(http.StatusBadRequest, codeBlobUploadInvalid, "chunk shorter than its Content-Range",
			map[string]int64{"expected": limit, "received": n})
	}
	setUploadHeaders(w, u)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (r *Registry) putUpload(w http.ResponseWriter, req *http.Request, name, id string) error {
	ctx := req.Context()
	unlock := r.uploadLocks.lock(name + "/" + id)
	defer unlock()
	want, err := digestParam(req.URL.Query().Get("digest"))
	if err != nil {
		return err
	}
	u, err := r.loadUpload(ctx, name, id)
	if err != nil {
		return err
	}
	limit, err := chunkLimit(req, u)
	if err != nil {
		return err
	}
	if req.ContentLength != 0 {
		n, err := r.appendData(ctx, u, req.Body, limit)
		if err != nil {
			return err
		}
		if limit >= 0 && n != limit {
			return newAPIError(http.StatusBadRequest, codeBlobUploadInvalid, "chunk shorter than its Content-Range",
				map[string]int64{"expected": limit, "received": n})
		}
	}
	return r.completeUpload(ctx, w, u, want)
}

// completeUpload verifies the upload against want and, only if it matches,
// moves the data into the content-addressed store and links it into the
// repository. On a mismatch the upload is discarded and nothing is stored.
func (r *Registry) completeUpload(ctx context.Context, w http.ResponseWriter, u *upload, want digest.Digest) error {
	var got digest.Digest
	if u.alg == want.Algorithm() {
		got = digest.NewDigest(u.alg, u.hash)
	} else {
		var err error
		if got, err = r.rehashUpload(ctx, u, want.Algorithm()); err != nil {
			return err
		}
	}
	if got != want {
		_ = r.deletePath(ctx, uploadDir(u.name, u.id))
		return errDigestInvalid(map[string]string{"expected": want.String(), "computed": got.String()})
	}
	data := uploadDataPath(u.name, u.id)
	if err := r.commitData(ctx, u); err != nil {
		return err
	}
	if size, err := r.blobSize(ctx, want); err == nil && size == u.size {
		// Already stored (content-addressed): nothing to move.
	} else if err := r.driver.Move(ctx, data, blobDataPath(want)); err != nil {
		return fmt.Errorf("storing blob %s: %w", want, err)
	}
	if err := r.writeLink(ctx, layerLinkPath(u.name, want), want); err != nil {
		return fmt.Errorf("linking blob %s into %s: %w", want, u.name, err)
	}
	if err := r.deletePath(ctx, uploadDir(u.name, u.id)); err != nil {
		r.log.WarnContext(ctx, "removing finished upload", "repo", u.name, "upload", u.id, "err", err)
	}
	if r.uploadObserver != nil {
		d := time.Duration(0)
		if !u.startedAt.IsZero() {
			d = r.clock.Now().Sub(u.startedAt)
		}
		r.uploadObserver(u.name, u.size, d)
	}
	blobCreated(w, u.name, want)
	return nil
}

// commitData makes the upload's data final on the driver before it moves.
func (r *Registry) commitData(ctx context.Context, u *upload) error {
	data := uploadDataPath(u.name, u.id)
	if u.size == 0 {
		// No byte was ever written: materialise the empty blob.
		if err := r.driver.PutContent(ctx, data, nil); err != nil {
			return fmt.Errorf("writing empty blob: %w", err)
		}
		return nil
	}
	fw, err := r.driver.Writer(ctx, data, true)
	if err != nil {
		return fmt.Errorf("opening upload %s: %w", u.id, err)
	}
	if fw.Size() != u.size {
		_ = fw.Close()
		return fmt.Errorf("upload %s changed underneath: %d bytes, expected %d", u.id, fw.Size(), u.size)
	}
	if err := fw.Commit(ctx); err != nil {
		_ = fw.Close()
		return fmt.Errorf("committing upload %s: %w", u.id, err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("closing upload %s: %w", u.id, err)
	}
	return nil
}

// rehashUpload computes the upload's digest with another algorithm than the
// one hashed incrementally, streaming the data once.
func (r *Registry) rehashUpload(ctx context.Context, u *upload, alg digest.Algorithm) (digest.Digest, error) {
	h := alg.Hash()
	if u.size > 0 {
		rc, err := r.driver.Reader(ctx, uploadDataPath(u.name, u.id), 0)
		if err != nil {
			return "", fmt.Errorf("reading upload %s: %w", u.id, err)
		}
		defer rc.Close()
		if _, err := io.Copy(h, io.LimitReader(rc, u.size)); err != nil {
			return "", fmt.Errorf("reading upload %s: %w", u.id, err)
		}
	}
	return digest.NewDigest(alg, h), nil
}

func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request, name, id string) error {
	ctx := req.Context()
	if ok, err := r.exists(ctx, uploadStartedAtPath(name, id)); err != nil {
		return err
	} else if !ok {
		return errUploadUnknown(id)
	}
	u := &upload{name: name, id: id}
	if fi, err := r.driver.Stat(ctx, uploadDataPath(name, id)); err == nil {
		u.size = fi.Size()
	} else if !isNotFound(err) {
		return fmt.Errorf("stat upload %s: %w", id, err)
	}
	setUploadHeaders(w, u)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request, name, id string) error {
	ctx := req.Context()
	unlock := r.uploadLocks.lock(name + "/" + id)
	defer unlock()
	if ok, err := r.exists(ctx, uploadStartedAtPath(name, id)); err != nil {
		return err
	} else if !ok {
		return errUploadUnknown(id)
	}
	if err := r.deletePath(ctx, uploadDir(name, id)); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// PurgeUploads removes uploads started more than olderThan ago (and stale
// temporary files), returning how many uploads it removed.
func (r *Registry) PurgeUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := r.clock.Now().Add(-olderThan)
	purged := 0
	err := r.walkRepos(ctx, func(name string, children []string) error {
		if !slices.Contains(children, "_uploads") {
			return nil
		}
		ids, err := r.list(ctx, uploadsPath(name))
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := ctx.Err(); err != nil {
				return err
			}
			started := time.Time{}
			if b, err := r.driver.GetContent(ctx, uploadStartedAtPath(name, id)); err == nil {
				started, _ = time.Parse(time.RFC3339Nano, string(b))
			}
			if started.IsZero() {
				if fi, err := r.driver.Stat(ctx, uploadDir(name, id)); err == nil {
					started = fi.ModTime()
				}
			}
			if started.IsZero() || started.After(cutoff) {
				continue
			}
			if err := r.deletePath(ctx, uploadDir(name, id)); err != nil {
				return err
			}
			purged++
		}
		return nil
	})
	if err != nil {
		return purged, fmt.Errorf("purging uploads: %w", err)
	}
	tmps, err := r.list(ctx, tmpRoot())
	if err != nil {
		return purged, fmt.Errorf("purging temporary files: %w", err)
	}
	for _, t := range tmps {
		p := path.Join(tmpRoot(), t)
		if fi, err := r.driver.Stat(ctx, p); err == nil && fi.ModTime().Before(cutoff) {
			if err := r.deletePath(ctx, p); err != nil {
				return purged, fmt.Errorf("purging temporary files: %w", err)
			}
		}
	}
	return purged, nil
}
