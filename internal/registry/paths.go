package registry

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"path"
	"regexp"

	"github.com/opencontainers/go-digest"

	"github.com/drydock-project/drydock/internal/imgref"
)

const rootPath = "/docker/registry/v2"

// uploadIDRE matches the upload identifiers this registry hands out.
var uploadIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// digestParam parses a digest from the request or answers DIGEST_INVALID.
func digestParam(s string) (digest.Digest, error) {
	d, err := imgref.ParseDigest(s)
	if err != nil {
		return "", newAPIError(http.StatusBadRequest, codeDigestInvalid, "invalid digest", map[string]string{"digest": s})
	}
	return d, nil
}

func newUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Paths on the storage driver. Every variable component has been validated
// (imgref.ValidRepository, imgref.ValidTag, imgref.ParseDigest, uploadIDRE) before it reaches these.

func blobDataPath(d digest.Digest) string {
	enc := d.Encoded()
	return path.Join(rootPath, "blobs", d.Algorithm().String(), enc[:2], enc, "data")
}

func reposRoot() string { return path.Join(rootPath, "repositories") }

func repoPath(name string) string { return path.Join(reposRoot(), name) }

func layerLinkPath(name string, d digest.Digest) string {
	return path.Join(repoPath(name), "_layers", d.Algorithm().String(), d.Encoded(), "link")
}

func manifestsPath(name string) string { return path.Join(repoPath(name), "_manifests") }

func revisionsPath(name string) string { return path.Join(manifestsPath(name), "revisions") }

func revisionDir(name string, d digest.Digest) string {
	return path.Join(revisionsPath(name), d.Algorithm().String(), d.Encoded())
}

func revisionLinkPath(name string, d digest.Digest) string {
	return path.Join(revisionDir(name, d), "link")
}

func revisionMediaTypePath(name string, d digest.Digest) string {
	return path.Join(revisionDir(name, d), "mediatype")
}

func tagsPath(name string) string { return path.Join(manifestsPath(name), "tags") }

func tagDir(name, tag string) string { return path.Join(tagsPath(name), tag) }

func tagLinkPath(name, tag string) string { return path.Join(tagDir(name, tag), "current", "link") }

func uploadsPath(name string) string { return path.Join(repoPath(name), "_uploads") }

func uploadDir(name, id string) string { return path.Join(uploadsPath(name), id) }

// uploadStatePath holds an upload's state: its existence is the upload's.
func uploadStatePath(name, id string) string { return path.Join(uploadDir(name, id), "state") }

// uploadPartPath holds one chunk of an upload.
func uploadPartPath(name, id, part string) string {
	return path.Join(uploadDir(name, id), "parts", part)
}

// uploadDataPath is where the parts of a chunked upload are joined.
func uploadDataPath(name, id string) string { return path.Join(uploadDir(name, id), "data") }

func referrersDir(name string, subject digest.Digest) string {
	return path.Join(repoPath(name), "_referrers", subject.Algorithm().String(), subject.Encoded())
}

func referrerPath(name string, subject, referrer digest.Digest) string {
	return path.Join(referrersDir(name, subject), referrer.Algorithm().String()+"-"+referrer.Encoded())
}

func tmpRoot() string { return path.Join(rootPath, "_tmp") }
