package registry

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"

	// Register sha256 and sha512 with crypto so go-digest can use them.
	_ "crypto/sha256"
	_ "crypto/sha512"
)

const (
	rootPath = "/docker/registry/v2"
	// maxNameLength bounds repository names (distribution uses 255).
	maxNameLength = 255
)

var (
	// nameComponentRE is one path component of a repository name, as in the
	// distribution specification.
	nameComponentRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
	// tagRE is the tag grammar of the distribution specification.
	tagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	// uploadIDRE matches the upload identifiers this registry hands out.
	uploadIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// validName reports whether name is a valid repository name. Every component
// matches nameComponentRE, so no component can be empty, "." or "..", nor
// collide with the "_"-prefixed bookkeeping directories.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLength {
		return false
	}
	for c := range strings.SplitSeq(name, "/") {
		if !nameComponentRE.MatchString(c) {
			return false
		}
	}
	return true
}

func validTag(tag string) bool { return tagRE.MatchString(tag) }

// parseDigest parses and validates a digest string, accepting only the
// algorithms this registry can verify (sha256, sha512).
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("parsing digest %q: %w", s, err)
	}
	switch d.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return d, nil
	default:
		return "", fmt.Errorf("parsing digest %q: unsupported algorithm %q", s, d.Algorithm())
	}
}

// digestParam parses a digest from the request or answers DIGEST_INVALID.
func digestParam(s string) (digest.Digest, error) {
	d, err := parseDigest(s)
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
// (validName, validTag, parseDigest, uploadIDRE) before it reaches these.

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
