// Package regstore opens the registry's storage as the configuration says:
// distribution's storage driver for blobs (filesystem by default, S3 for
// replicas), a cache of content-addressed reads in front of it, and, when
// state lives in PostgreSQL, the registry's index (tags, manifest links and
// media types, layer links, referrers) in the database, so that every
// replica reads what any replica wrote and a manifest HEAD costs no round
// trip to object storage.
package regstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"golang.org/x/sys/unix"

	// The storage drivers a config file can name. Each registers itself with
	// distribution's driver factory.
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/s3-aws"

	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
)

// Storage is the registry's storage of one process.
type Storage struct {
	// Driver is what the registry reads and writes through.
	Driver storagedriver.StorageDriver
	// Blobs is the blob driver alone (for readiness checks).
	Blobs storagedriver.StorageDriver
	// Index is the database index, nil when the index is on Blobs.
	Index *SQLDriver
	// Cache is the content-addressed read cache, nil when there is none.
	Cache *Cache
	// Sync writes the blob storage's pending changes to stable storage
	// (SyncFilesystem); nil when the driver has no such thing to do.
	Sync func() error
}

// Uncached is the storage without the read cache: what a check of what is
// really stored reads through.
func (s *Storage) Uncached() storagedriver.StorageDriver {
	if s.Index != nil {
		return NewSplit(s.Blobs, s.Index)
	}
	return s.Blobs
}

// Close releases the index's database.
func (s *Storage) Close() error {
	if s.Index != nil {
		return s.Index.Close()
	}
	return nil
}

// IndexInDatabase reports whether cfg keeps the registry index in the
// database: when state lives in PostgreSQL, which replicas share.
func IndexInDatabase(cfg config.Config) bool {
	return cfg.Database.Effective() == database.Postgres
}

// Open creates the storage cfg describes; cfg must have passed Validate.
func Open(ctx context.Context, cfg config.Config, dbs *database.Opener) (*Storage, error) {
	blobs, err := factory.Create(ctx, cfg.Storage.Driver, cfg.Storage.Parameters)
	if err != nil {
		return nil, fmt.Errorf("storage driver %q: %w", cfg.Storage.Driver, err)
	}
	var index *SQLDriver
	if IndexInDatabase(cfg) {
		db, err := dbs.Open(ctx, Component)
		if err != nil {
			return nil, fmt.Errorf("registry index: %w", err)
		}
		if index, err = NewSQLDriver(ctx, db); err != nil {
			db.Close()
			return nil, err
		}
	}
	root, ok := cfg.Storage.Parameters["rootdirectory"].(string)
	filesystem := ok && cfg.Storage.Driver == "filesystem"
	if filesystem {
		blobs = NoAtime(blobs, root)
	}
	s := Compose(blobs, index)
	if filesystem {
		s.Sync = SyncFilesystem(root)
	}
	return s, nil
}

// SyncFilesystem returns a function that writes every pending change of
// the filesystem holding root (data, and metadata no fsync wrote:
// deletions, new directories) to disk, with syncfs(2). A root that does
// not exist yet has nothing to write.
func SyncFilesystem(root string) func() error {
	return func() error {
		f, err := os.Open(root)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("syncing the storage: %w", err)
		}
		defer f.Close()
		if err := unix.Syncfs(int(f.Fd())); err != nil {
			return fmt.Errorf("syncing the filesystem of %s: %w", root, err)
		}
		return nil
	}
}

// Compose puts the storage together from a blob driver and, when not nil,
// the index in the database.
func Compose(blobs storagedriver.StorageDriver, index *SQLDriver) *Storage {
	s := &Storage{Driver: blobs, Blobs: blobs, Index: index}
	if n := blobs.Name(); n != "filesystem" && n != "inmemory" {
		// The filesystem has its page cache; object storage needs this one.
		s.Cache = NewCache(atomicPuts(blobs), 0)
		s.Driver = s.Cache
	}
	if index != nil {
		s.Driver = NewSplit(s.Driver, index)
	}
	return s
}

// atomicPuts marks drivers whose PutContent replaces an object atomically
// (S3: an object appears whole or not at all), so that the registry skips
// staging and a server-side copy for its small writes.
func atomicPuts(d storagedriver.StorageDriver) storagedriver.StorageDriver {
	if d.Name() == "s3aws" {
		return atomicDriver{d}
	}
	return d
}

type atomicDriver struct{ storagedriver.StorageDriver }

func (atomicDriver) AtomicPut(string) bool { return true }
