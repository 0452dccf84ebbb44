package regstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
)

// CopyStats counts what Copy did.
type CopyStats struct {
	Files   int   // index files and other small files
	Blobs   int   // blobs copied
	Skipped int   // blobs the target already held
	Bytes   int64 // blob bytes copied
}

// transient are the directories Copy leaves out: uploads in progress and
// staging files, which belong to the process that made them.
func transient(p string) bool {
	base := path.Base(p)
	return base == "_uploads" || base == "_tmp"
}

// blobDigest is the digest a blob data path names.
func blobDigest(p string) (digest.Digest, bool) {
	if !blobDataRE.MatchString(p) {
		return "", false
	}
	parts := strings.Split(p, "/")
	d := digest.NewDigestFromEncoded(digest.Algorithm(parts[5]), parts[7])
	return d, d.Validate() == nil
}

// Copy copies the registry from one storage to another: every blob (its
// bytes checked against its digest as they stream; one the target holds
// already is skipped) and every index file (tags, links, media types,
// referrers), leaving out uploads in progress. progress, when not nil, is
// called after each file.
func Copy(ctx context.Context, from, to storagedriver.StorageDriver, progress func(CopyStats)) (CopyStats, error) {
	var st CopyStats
	err := from.Walk(ctx, registryRoot, func(fi storagedriver.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if fi.IsDir() {
			if transient(fi.Path()) {
				return storagedriver.ErrSkipDir
			}
			return nil
		}
		p := fi.Path()
		if d, ok := blobDigest(p); ok {
			if tfi, err := to.Stat(ctx, p); err == nil && tfi.Size() == fi.Size() {
				st.Skipped++
			} else if err := copyBlob(ctx, from, to, p, d, &st); err != nil {
				return err
			}
		} else {
			b, err := from.GetContent(ctx, p)
			if err != nil {
				return fmt.Errorf("reading %s: %w", p, err)
			}
			if err := to.PutContent(ctx, p, b); err != nil {
				return fmt.Errorf("writing %s: %w", p, err)
			}
			st.Files++
		}
		if progress != nil {
			progress(st)
		}
		return nil
	})
	if isNotFound(err) {
		err = nil // an empty registry
	}
	return st, err
}

func copyBlob(ctx context.Context, from, to storagedriver.StorageDriver, p string, d digest.Digest, st *CopyStats) error {
	rc, err := from.Reader(ctx, p, 0)
	if err != nil {
		return fmt.Errorf("reading blob %s: %w", d, err)
	}
	defer rc.Close()
	fw, err := to.Writer(ctx, p, false)
	if err != nil {
		return fmt.Errorf("writing blob %s: %w", d, err)
	}
	h := d.Algorithm().Hash()
	n, err := io.Copy(io.MultiWriter(fw, h), rc)
	if err != nil {
		_ = fw.Cancel(ctx)
		return fmt.Errorf("copying blob %s: %w", d, err)
	}
	if got := digest.NewDigest(d.Algorithm(), h); got != d {
		_ = fw.Cancel(ctx)
		return fmt.Errorf("blob %s in the source holds bytes hashing to %s: the source is corrupt; nothing of it was copied", d, got)
	}
	if err := fw.Commit(ctx); err != nil {
		_ = fw.Cancel(ctx)
		return fmt.Errorf("writing blob %s: %w", d, err)
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("writing blob %s: %w", d, err)
	}
	st.Blobs++
	st.Bytes += n
	return nil
}

// VerifyCopy checks that every file of from's registry is in to: index
// files with the same content, blobs with the same size and, when content
// is set, bytes that hash to their digest. It returns how many files it
// checked.
func VerifyCopy(ctx context.Context, from, to storagedriver.StorageDriver, content bool) (int, error) {
	n := 0
	err := from.Walk(ctx, registryRoot, func(fi storagedriver.FileInfo) error {
		if fi.IsDir() {
			if transient(fi.Path()) {
				return storagedriver.ErrSkipDir
			}
			return nil
		}
		p := fi.Path()
		if d, ok := blobDigest(p); ok {
			tfi, err := to.Stat(ctx, p)
			if err != nil {
				return fmt.Errorf("blob %s missing from the copy: %w", d, err)
			}
			if tfi.Size() != fi.Size() {
				return fmt.Errorf("blob %s: %d bytes in the copy, %d in the source", d, tfi.Size(), fi.Size())
			}
			if content {
				if err := checkBlob(ctx, to, p, d); err != nil {
					return err
				}
			}
		} else {
			a, err := from.GetContent(ctx, p)
			if err != nil {
				return err
			}
			b, err := to.GetContent(ctx, p)
			if err != nil {
				return fmt.Errorf("%s missing from the copy: %w", p, err)
			}
			if !bytes.Equal(a, b) {
				return fmt.Errorf("%s differs in the copy", p)
			}
		}
		n++
		return nil
	})
	if isNotFound(err) {
		err = nil
	}
	return n, err
}

func checkBlob(ctx context.Context, d storagedriver.StorageDriver, p string, want digest.Digest) error {
	rc, err := d.Reader(ctx, p, 0)
	if err != nil {
		return fmt.Errorf("reading blob %s of the copy: %w", want, err)
	}
	defer rc.Close()
	h := want.Algorithm().Hash()
	if _, err := io.Copy(h, rc); err != nil {
		return fmt.Errorf("reading blob %s of the copy: %w", want, err)
	}
	if got := digest.NewDigest(want.Algorithm(), h); got != want {
		return fmt.Errorf("blob %s of the copy holds bytes hashing to %s", want, got)
	}
	return nil
}

// Empty reports whether the storage holds no repository.
func Empty(ctx context.Context, d storagedriver.StorageDriver) (bool, error) {
	l, err := d.List(ctx, registryRoot+"/repositories")
	if err != nil {
		var nf storagedriver.PathNotFoundError
		if errors.As(err, &nf) {
			return true, nil
		}
		return false, err
	}
	return len(l) == 0, nil
}
