package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding"
	"encoding/hex"
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

// An upload lives in <repo>/_uploads/<id>/: "state" (its existence is the
// upload's existence) and "parts/", one object per chunk received. The state
// lists the parts that make up the upload, in order, and the running hash
// of exactly their bytes, so a chunk can continue the digest computation in
// any process — any replica — without re-reading the data.
//
// Each request writes its chunk to a part of its own (named by its offset
// and a random suffix), and only then rewrites the state, atomically, to
// list it: the state never names a part whose bytes its hash does not
// cover. A request that dies half-way leaves at most a part no state names,
// and the client resends that one chunk from the offset the state reports.
// Two requests racing on one upload (a client retrying on another replica
// while the first is still running) each write their own part; whichever
// state is written last wins, and it is consistent, so a blob can never be
// stored under a digest its bytes do not have. No lock, in a process or a
// database, is needed for that.
//
// Completing an upload moves its single part into the content-addressed
// store (a rename on the filesystem, a server-side copy on S3), or joins
// several parts into one object first, checking the digest as it streams.
type upload struct {
	name, id  string
	startedAt time.Time
	alg       digest.Algorithm
	hash      hash.Hash
	size      int64 // bytes in the parts, all covered by hash
	parts     []uploadPart
}

type uploadPart struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

type uploadStateFile struct {
	StartedAt time.Time `json:"startedAt"`
	// UpdatedAt is when the upload last received bytes: how long it has
	// been idle decides when it is abandoned.
	UpdatedAt time.Time    `json:"updatedAt,omitzero"`
	Algorithm string       `json:"algorithm"`
	Offset    int64        `json:"offset"`
	Hash      []byte       `json:"hash"`
	Parts     []uploadPart `json:"parts"`
}

// maxUploadParts bounds the chunks of one upload (a client sending a
// gigabyte in one-byte chunks would otherwise make the state huge).
const maxUploadParts = 10_000

func (r *Registry) createUpload(ctx context.Context, name string, alg digest.Algorithm) (*upload, error) {
	u := &upload{name: name, id: newUploadID(), startedAt: r.clock.Now().UTC(), alg: alg, hash: alg.Hash()}
	if err := r.saveUpload(ctx, u); err != nil {
		return nil, fmt.Errorf("starting upload in %s: %w", name, err)
	}
	return u, nil
}

// saveUpload writes the upload's state, atomically.
func (r *Registry) saveUpload(ctx context.Context, u *upload) error {
	m, ok := u.hash.(encoding.BinaryMarshaler)
	if !ok {
		return fmt.Errorf("hash %s cannot be marshalled", u.alg)
	}
	st, err := m.MarshalBinary()
	if err != nil {
		return fmt.Errorf("marshalling %s hash state: %w", u.alg, err)
	}
	b, err := json.Marshal(uploadStateFile{StartedAt: u.startedAt, UpdatedAt: r.clock.Now().UTC(), Algorithm: u.alg.String(), Offset: u.size, Hash: st, Parts: u.parts})
	if err != nil {
		return fmt.Errorf("encoding upload state: %w", err)
	}
	return r.putAtomic(ctx, uploadStatePath(u.name, u.id), b)
}

// loadUpload restores an upload and its running hash from its state.
func (r *Registry) loadUpload(ctx context.Context, name, id string) (*upload, error) {
	b, err := r.driver.GetContent(ctx, uploadStatePath(name, id))
	if err != nil {
		if isNotFound(err) {
			return nil, errUploadUnknown(id)
		}
		return nil, fmt.Errorf("reading upload %s: %w", id, err)
	}
	var st uploadStateFile
	if err := json.Unmarshal(b, &st); err != nil {
		r.log.WarnContext(ctx, "ignoring an unreadable upload state", "repo", name, "upload", id, "err", err)
		return nil, errUploadUnknown(id)
	}
	alg := digest.Algorithm(st.Algorithm)
	if alg != digest.SHA256 && alg != digest.SHA512 {
		return nil, errUploadUnknown(id)
	}
	h := alg.Hash()
	if um, ok := h.(encoding.BinaryUnmarshaler); !ok || um.UnmarshalBinary(st.Hash) != nil {
		return nil, errUploadUnknown(id)
	}
	var total int64
	for _, p := range st.Parts {
		total += p.Size
	}
	if total != st.Offset {
		return nil, errUploadUnknown(id)
	}
	return &upload{name: name, id: id, startedAt: st.StartedAt, alg: alg, hash: h, size: st.Offset, parts: st.Parts}, nil
}

// appendData writes up to limit bytes of body (all of it if limit < 0) to a
// new part of the upload, hashing as it goes, and saves the state listing
// it. Whatever arrived before a broken body is kept: the client can resume
// from the reported range.
func (r *Registry) appendData(ctx context.Context, u *upload, body io.Reader, limit int64) (int64, error) {
	if len(u.parts) >= maxUploadParts {
		return 0, newAPIError(http.StatusBadRequest, codeBlobUploadInvalid, "too many chunks", map[string]int{"limit": maxUploadParts})
	}
	if limit >= 0 {
		body = io.LimitReader(body, limit)
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	part := uploadPart{Name: fmt.Sprintf("%020d-%s", u.size, hex.EncodeToString(suffix[:]))}
	// Peek one byte so that an empty body writes no part.
	var first [1]byte
	n0, rerr := io.ReadFull(body, first[:])
	if n0 == 0 {
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return 0, newAPIError(http.StatusBadRequest, codeBlobUploadInvalid, "reading request body failed", rerr.Error())
		}
		return 0, nil
	}
	p := uploadPartPath(u.name, u.id, part.Name)
	fw, err := r.driver.Writer(ctx, p, false)
	if err != nil {
		return 0, fmt.Errorf("opening upload %s: %w", u.id, err)
	}
	n, copyErr := io.Copy(io.MultiWriter(partWriter{fw}, u.hash), io.MultiReader(bytes.NewReader(first[:]), body))
	var writeErr *partWriteError
	if errors.As(copyErr, &writeErr) {
		_ = fw.Cancel(ctx)
		return 0, fmt.Errorf("writing upload %s: %w", u.id, copyErr)
	}
	if err := fw.Commit(ctx); err != nil {
		_ = fw.Cancel(ctx)
		return 0, fmt.Errorf("committing upload %s: %w", u.id, err)
	}
	if err := fw.Close(); err != nil {
		return 0, fmt.Errorf("closing upload %s: %w", u.id, err)
	}
	part.Size = n
	u.parts = append(u.parts, part)
	u.size += n
	if err := r.saveUpload(ctx, u); err != nil {
		return 0, err
	}
	if copyErr != nil {
		return n, newAPIError(http.StatusBadRequest, codeBlobUploadInvalid, "reading request body failed", copyErr.Error())
	}
	return n, nil
}

// partWriteError marks a failure to write a part (the storage), as opposed
// to one reading the request body (the client).
type partWriteError struct{ err error }

func (e *partWriteError) Error() string { return e.err.Error() }
func (e *partWriteError) Unwrap() error { return e.err }

type partWriter struct{ w io.Writer }

func (p partWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if err != nil {
		err = &partWriteError{err}
	}
	return n, err
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
		if err := r.checkMount(ctx, name, d); err != nil {
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
	// A session's size is unknown yet: refused only at the limit; a
	// monolithic upload announces its size in Content-Length.
	announced := int64(0)
	if want != "" {
		announced = max(req.ContentLength, 0)
	}
	if err := r.checkQuota(ctx, name, announced); err != nil {
		return err
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
	if _, err := r.appendData(ctx, u, req.Body, -1); err != nil {
		_ = r.deletePath(ctx, uploadDir(name, u.id))
		return err
	}
	return r.completeUpload(ctx, w, u, want)
}

// checkMount asks the quota for a mounted blob's bytes, unless name holds
// it already (a blob that does not exist mounts nothing: the client
// uploads it, and that is checked).
func (r *Registry) checkMount(ctx context.Context, name string, d digest.Digest) error {
	if !r.linkIsNew(ctx, layerLinkPath(name, d)) {
		return nil
	}
	size, err := r.blobSizeDirect(ctx, d)
	if err != nil {
		return nil
	}
	return r.checkQuota(ctx, name, size)
}

// mount links an existing blob into name: from the repository from when it
// links the blob, or (anonymous, from == "") when the blob exists anywhere.
func (r *Registry) mount(ctx context.Context, name string, d digest.Digest, from string) (bool, error) {
	if from != "" {
		if !imgref.ValidRepository(from) {
			return false, nil
		}
		missing, err := r.linkBlobs(ctx, name, from, []digest.Digest{d})
		return err == nil && missing == "", err
	}
	g, err := r.guard(ctx)
	if err != nil {
		return false, err
	}
	defer g.Done()
	if err := protect(ctx, g, BlobKey(d), LayerKey(name, d)); err != nil {
		return false, err
	}
	size, err := r.blobSizeDirect(ctx, d)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	isNew := r.linkIsNew(ctx, layerLinkPath(name, d))
	if err := r.writeLink(ctx, layerLinkPath(name, d), d); err != nil {
		return false, fmt.Errorf("mounting %s into %s: %w", d, name, err)
	}
	if isNew {
		r.addUsage(ctx, name, size)
	}
	return true, nil
}

// linkBlobs links the blobs ds that repository from holds into name, as
// one write: one guard and one Protect for all of them (a promotion's
// blobs are marked together, not one database transaction each). It
// stops at the first blob from does not hold and returns it.
func (r *Registry) linkBlobs(ctx context.Context, name, from string, ds []digest.Digest) (missing digest.Digest, err error) {
	g, err := r.guard(ctx)
	if err != nil {
		return "", err
	}
	defer g.Done()
	keys := make([]string, 0, 2*len(ds))
	for _, d := range ds {
		keys = append(keys, BlobKey(d), LayerKey(name, d))
	}
	if err := protect(ctx, g, keys...); err != nil {
		return "", err
	}
	for _, d := range ds {
		size, err := r.linkedBlobDirect(ctx, from, d)
		if errors.Is(err, ErrNotFound) {
			return d, nil
		} else if err != nil {
			return "", err
		}
		isNew := r.linkIsNew(ctx, layerLinkPath(name, d))
		if err := r.writeLink(ctx, layerLinkPath(name, d), d); err != nil {
			return "", fmt.Errorf("mounting %s into %s: %w", d, name, err)
		}
		if isNew {
			r.addUsage(ctx, name, size)
		}
	}
	return "", nil
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
	u, err := r.loadUpload(ctx, name, id)
	if err != nil {
		return err
	}
	limit, err := chunkLimit(req, u)
	if err != nil {
		return err
	}
	if err := r.checkChunk(ctx, req, u, limit); err != nil {
		return err
	}
	n, err := r.appendData(ctx, u, req.Body, limit)
	if err != nil {
		return err
	}
	if err := r.checkUnannounced(ctx, req, u, limit); err != nil {
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
		if err := r.checkChunk(ctx, req, u, limit); err != nil {
			return err
		}
		n, err := r.appendData(ctx, u, req.Body, limit)
		if err != nil {
			return err
		}
		if err := r.checkUnannounced(ctx, req, u, limit); err != nil {
			return err
		}
		if limit >= 0 && n != limit {
			return newAPIError(http.StatusBadRequest, codeBlobUploadInvalid, "chunk shorter than its Content-Range",
				map[string]int64{"expected": limit, "received": n})
		}
	}
	return r.completeUpload(ctx, w, u, want)
}

// checkChunk asks the quota for the upload's bytes plus a chunk whose
// length the client announced (Content-Range, or Content-Length), before
// its body is read.
func (r *Registry) checkChunk(ctx context.Context, req *http.Request, u *upload, limit int64) error {
	if limit < 0 {
		limit = req.ContentLength
	}
	if limit < 0 {
		return nil // unannounced: checkUnannounced, once received
	}
	return r.checkQuota(ctx, u.name, u.size+limit)
}

// checkUnannounced checks an upload after a chunk of unannounced length
// (chunked transfer encoding) arrived; over the quota, the upload is
// discarded.
func (r *Registry) checkUnannounced(ctx context.Context, req *http.Request, u *upload, limit int64) error {
	if r.quota == nil || limit >= 0 || req.ContentLength >= 0 {
		return nil
	}
	if err := r.checkQuota(ctx, u.name, u.size); err != nil {
		_ = r.deletePath(context.WithoutCancel(ctx), uploadDir(u.name, u.id))
		return err
	}
	return nil
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
	if err := r.linkUpload(ctx, u, want); err != nil {
		return err
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

// linkUpload makes the upload's bytes blob want of the repository: it
// protects the blob and its link (see Barrier), stores the bytes unless the
// blob is stored already, and links it.
func (r *Registry) linkUpload(ctx context.Context, u *upload, want digest.Digest) error {
	g, err := r.guard(ctx)
	if err != nil {
		return err
	}
	defer g.Done()
	if err := protect(ctx, g, BlobKey(want), LayerKey(u.name, want)); err != nil {
		return err
	}
	if size, err := r.blobSizeDirect(ctx, want); err == nil && size == u.size {
		// Already stored (content-addressed): nothing to move.
	} else if err := r.storeUpload(ctx, u, want); err != nil {
		// A concurrent completion of the same content may have won.
		if size, serr := r.blobSizeDirect(ctx, want); serr != nil || size != u.size {
			return err
		}
	}
	isNew := r.linkIsNew(ctx, layerLinkPath(u.name, want))
	if err := r.writeLink(ctx, layerLinkPath(u.name, want), want); err != nil {
		return fmt.Errorf("linking blob %s into %s: %w", want, u.name, err)
	}
	if isNew {
		r.addUsage(ctx, u.name, u.size)
	}
	return nil
}

// storeUpload puts the upload's bytes at want's content-addressed path: an
// empty blob is written, a single part moved, several parts joined into
// one object (checking want as they stream) and that moved.
func (r *Registry) storeUpload(ctx context.Context, u *upload, want digest.Digest) error {
	switch len(u.parts) {
	case 0:
		if err := r.putAtomic(ctx, blobDataPath(want), nil); err != nil {
			return fmt.Errorf("storing empty blob: %w", err)
		}
		return nil
	case 1:
		if err := r.driver.Move(ctx, uploadPartPath(u.name, u.id, u.parts[0].Name), blobDataPath(want)); err != nil {
			return fmt.Errorf("storing blob %s: %w", want, err)
		}
		return nil
	}
	data := uploadDataPath(u.name, u.id)
	fw, err := r.driver.Writer(ctx, data, false)
	if err != nil {
		return fmt.Errorf("joining upload %s: %w", u.id, err)
	}
	h := want.Algorithm().Hash()
	if err := r.copyParts(ctx, u, io.MultiWriter(partWriter{fw}, h)); err != nil {
		_ = fw.Cancel(ctx)
		return err
	}
	if got := digest.NewDigest(want.Algorithm(), h); got != want {
		_ = fw.Cancel(ctx)
		return fmt.Errorf("joining upload %s: the stored parts hash to %s, not %s", u.id, got, want)
	}
	if err := fw.Commit(ctx); err != nil {
		_ = fw.Cancel(ctx)
		return fmt.Errorf("joining upload %s: %w", u.id, err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("joining upload %s: %w", u.id, err)
	}
	if err := r.driver.Move(ctx, data, blobDataPath(want)); err != nil {
		return fmt.Errorf("storing blob %s: %w", want, err)
	}
	return nil
}

// copyParts streams the upload's parts, in order, to w, checking each
// part's stored size.
func (r *Registry) copyParts(ctx context.Context, u *upload, w io.Writer) error {
	for _, p := range u.parts {
		rc, err := r.driver.Reader(ctx, uploadPartPath(u.name, u.id, p.Name), 0)
		if err != nil {
			return fmt.Errorf("reading upload %s part %s: %w", u.id, p.Name, err)
		}
		n, err := io.Copy(w, io.LimitReader(rc, p.Size+1))
		_ = rc.Close()
		if err != nil {
			return fmt.Errorf("reading upload %s part %s: %w", u.id, p.Name, err)
		}
		if n != p.Size {
			return fmt.Errorf("upload %s part %s holds %d bytes, its state says %d", u.id, p.Name, n, p.Size)
		}
	}
	return nil
}

// rehashUpload computes the upload's digest with another algorithm than the
// one hashed incrementally, streaming the parts once.
func (r *Registry) rehashUpload(ctx context.Context, u *upload, alg digest.Algorithm) (digest.Digest, error) {
	h := alg.Hash()
	if err := r.copyParts(ctx, u, h); err != nil {
		return "", err
	}
	return digest.NewDigest(alg, h), nil
}

func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request, name, id string) error {
	u, err := r.loadUpload(req.Context(), name, id)
	if err != nil {
		return err
	}
	setUploadHeaders(w, u)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request, name, id string) error {
	ctx := req.Context()
	if ok, err := r.exists(ctx, uploadStatePath(name, id)); err != nil {
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

// PurgeUploads removes uploads idle for more than olderThan (no bytes
// received since) and staging files older than that, returning how many
// uploads it removed. A collection (Collect) does the same.
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
			if last, _ := r.uploadActivity(ctx, name, id); last.After(cutoff) {
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
	stale, err := r.staleTemps(ctx, cutoff)
	if err != nil {
		return purged, fmt.Errorf("purging temporary files: %w", err)
	}
	for _, t := range stale {
		if err := r.deletePath(ctx, path.Join(tmpRoot(), t.Name)); err != nil {
			return purged, fmt.Errorf("purging temporary files: %w", err)
		}
	}
	return purged, nil
}

// staleTemps lists the staging files last written before cutoff: atomic
// writes a crash cut off (a live one is a few milliseconds old).
func (r *Registry) staleTemps(ctx context.Context, cutoff time.Time) ([]Item, error) {
	names, err := r.list(ctx, tmpRoot())
	if err != nil {
		return nil, err
	}
	var out []Item
	for _, t := range names {
		if fi, err := r.driver.Stat(ctx, path.Join(tmpRoot(), t)); err == nil && fi.ModTime().Before(cutoff) {
			out = append(out, Item{Kind: KindTemp, Name: t, Size: fi.Size()})
		}
	}
	return out, nil
}

// uploadActivity returns when an upload last received bytes (from its
// state; for a directory without a readable state, the newest
// modification time of what it holds) and how many bytes its state
// covers.
func (r *Registry) uploadActivity(ctx context.Context, name, id string) (time.Time, int64) {
	if b, err := r.driver.GetContent(ctx, uploadStatePath(name, id)); err == nil {
		var st uploadStateFile
		if json.Unmarshal(b, &st) == nil && !st.StartedAt.IsZero() {
			last := st.StartedAt
			if st.UpdatedAt.After(last) {
				last = st.UpdatedAt
			}
			return last, st.Offset
		}
	}
	return r.uploadAge(ctx, name, id), 0
}

// uploadAge is when a directory a crash or a race left without a state
// was last written: the newest modification time of what it holds; zero
// when it holds nothing datable, which purges it.
func (r *Registry) uploadAge(ctx context.Context, name, id string) time.Time {
	var newest time.Time
	dir := uploadDir(name, id)
	names, _ := r.list(ctx, dir)
	parts, _ := r.list(ctx, path.Join(dir, "parts"))
	for _, p := range slices.Concat(prefixed(dir, names), prefixed(path.Join(dir, "parts"), parts)) {
		if fi, err := r.driver.Stat(ctx, p); err == nil && !fi.IsDir() && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	return newest
}

func prefixed(dir string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = path.Join(dir, n)
	}
	return out
}
