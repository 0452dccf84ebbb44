// Package registry is drydock's embedded OCI registry: the
// distribution-spec v1.1 API (pull, push, content discovery, content
// management, referrers) as an http.Handler for /v2/, storing everything
// through a distribution v3 storage driver (filesystem, S3, ...).
//
// The API layer is drydock's own; only the driver interface comes from
// distribution. It supports sha256 and sha512 digests everywhere, the
// referrers API with artifactType filtering and the OCI-Subject header,
// cross-repository and anonymous blob mounts, chunked uploads whose hash
// state survives across requests and processes, and OCI image manifests and
// indexes plus Docker schema2 manifests and manifest lists.
//
// # Layout on the driver
//
// The layout keeps distribution's where it applies:
//
//	/docker/registry/v2/
//	  blobs/<alg>/<hex[0:2]>/<hex>/data               content, by digest (layers, configs, manifests)
//	  repositories/<name>/
//	    _layers/<alg>/<hex>/link                      blob linked into the repository
//	    _manifests/revisions/<alg>/<hex>/link         manifest stored in the repository
//	    _manifests/revisions/<alg>/<hex>/mediatype    Content-Type it was pushed with
//	    _manifests/tags/<tag>/current/link            tag -> manifest digest
//	    _referrers/<alg>/<hex>/<ralg>-<rhex>          descriptor of a manifest whose subject is <alg>:<hex>
//	    _uploads/<id>/state                           upload in progress: start time, parts, running hash
//	    _uploads/<id>/parts/<offset>-<random>         one chunk received
//	    _uploads/<id>/data                            the parts joined, at completion
//	  _tmp/<id>                                       private staging for atomic writes
//
// A link file holds a digest string.
//
// # Crash safety
//
// Nothing half-written becomes visible. Blob data is received in the
// repository's private upload area and reaches its content-addressed path
// only by a driver Move after the digest is verified; then the repository
// link is written. Small files (links, manifests, media types, referrer
// entries, hash states) are written under _tmp and moved into place, so a
// reader sees the old or the new content, never a torn file (a driver
// whose PutContent is atomic already, see AtomicPutter, skips the staging). A manifest's
// content is stored, then its media type and revision link, then its
// referrers entry, and its tags last, so a tag never points at a manifest
// that is not fully stored. Readers treat a link whose target is missing, or
// whose content is not a digest, as not found. Deleting a manifest removes
// its tags first and its revision last.
//
// Concurrent pushes of the same blob or manifest write identical content to
// the same content-addressed path and links; the last rename wins. An
// upload's state lives on the driver, so its chunks may arrive at different
// processes (replicas over shared storage); each chunk is its own part and
// the state that lists it is written after it, atomically, so concurrent or
// interrupted chunks never make a blob whose bytes differ from its digest
// (see uploads.go).
//
// Abandoned uploads and staging files are removed by PurgeUploads.
//
// Blob data is never deleted by the API: DELETE unlinks it from the
// repository (garbage collection of unreferenced data is separate).
package registry
