//go:build tools

// Package s3server pins the S3-compatible object store the replica tests
// run against: versitygw (Apache-2.0, github.com/versity/versitygw), built
// from its Go module into the cache by `make s3server` (about 2 minutes
// once) and run as a separate process serving a directory (its posix
// backend). A separate module keeps its dependencies out of drydock's
// go.mod. versitygw rather than MinIO: half the build time, and a license
// that lets it be linked if ever needed.
//
// Build: cd hack/s3server && go build -o DIR/versitygw github.com/versity/versitygw/cmd/versitygw
package s3server

import _ "github.com/versity/versitygw/cmd/versitygw"
