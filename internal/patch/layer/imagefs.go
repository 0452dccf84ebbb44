package layer

import (
	"context"
	"io/fs"

	"github.com/drydock-project/drydock/internal/rootfs"
)

// ImageFS is the read-only view of the image a changeset is built over:
// a *rootfs.FS. Lstat and ReadLink do not follow the last element's
// symbolic link; Entry gives a path's metadata (owner, layer); ReadFiles
// reads many files in one pass over each layer.
type ImageFS interface {
	fs.FS
	Lstat(name string) (fs.FileInfo, error)
	ReadLink(name string) (string, error)
	Entry(name string) (rootfs.Entry, error)
	ReadFiles(ctx context.Context, names []string, fn func(name string, data []byte) error) error
}
