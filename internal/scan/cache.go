package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/drydock-project/drydock/internal/inventory"
	"github.com/drydock-project/drydock/internal/osinfo"
)

// snapshotVersion changes whenever Snapshot's meaning changes, so that
// inventories stored by an older drydock are read again from the image.
// 2: snapshots are stored only for images Inspect validated (not hostile,
// corrupt, unverifiable or over a limit).
const snapshotVersion = 2

// maxSnapshotSize bounds a stored inventory file.
const maxSnapshotSize = 64 << 20

// Snapshot is everything a scan takes from an image: its OS and installed
// packages. It depends only on the image and the analyzers, not on the
// vulnerability DB, so it can be stored by manifest digest and matched
// again after every DB update.
type Snapshot struct {
	SchemaVersion int                      `json:"schemaVersion"`
	OS            osinfo.OS                `json:"os"`
	Unsupported   string                   `json:"unsupported,omitempty"` // why the OS is not supported
	Packages      []inventory.Package      `json:"packages,omitempty"`
	Skipped       int                      `json:"skipped,omitempty"`
	Analyzers     []inventory.AnalyzerInfo `json:"analyzers,omitempty"`
}

// InventoryCache stores Snapshots by key (manifest digest and analyzer
// versions, see Scanner's use). Get reports ok=false for a missing entry.
type InventoryCache interface {
	Get(ctx context.Context, key string) (snap *Snapshot, ok bool, err error)
	Put(ctx context.Context, key string, snap *Snapshot) error
}

// WithInventoryCache makes the scanner store each image's inventory and
// reuse it for images it has seen, so a rescan after a DB update reads no
// layer.
func WithInventoryCache(c InventoryCache) Option {
	return func(s *Scanner) error {
		if c == nil {
			return errors.New("scan.WithInventoryCache: nil cache")
		}
		s.cache = c
		return nil
	}
}

// cacheKey names an image's snapshot: its manifest digest plus the type
// and version of every analyzer, so a changed analyzer invalidates it.
func (s *Scanner) cacheKey(manifestDigest string) string {
	parts := make([]string, 0, len(s.analyzers))
	for _, a := range s.analyzers {
		parts = append(parts, a.Type()+"-"+strconv.Itoa(a.Version()))
	}
	slices.Sort(parts)
	return manifestDigest + "/v" + strconv.Itoa(snapshotVersion) + "-" + strings.Join(parts, "_")
}

// FileCache is an InventoryCache in a directory: one JSON file per key,
// written atomically (temporary file, then rename).
type FileCache struct {
	dir string
}

// NewFileCache stores snapshots under dir, creating it when needed.
func NewFileCache(dir string) (*FileCache, error) {
	if dir == "" {
		return nil, errors.New("scan.NewFileCache: empty directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create inventory cache %s: %w", dir, err)
	}
	return &FileCache{dir: dir}, nil
}

// keyRE is what cacheKey produces; anything else is refused, so a key can
// never name a path outside the cache directory.
var keyRE = regexp.MustCompile(`^(sha256|sha512):[a-f0-9]{64,128}/v[0-9]+-[A-Za-z0-9_.-]*$`)

func (c *FileCache) path(key string) (string, error) {
	if !keyRE.MatchString(key) {
		return "", fmt.Errorf("invalid inventory cache key %q", key)
	}
	digest, rest, _ := strings.Cut(key, "/")
	alg, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(c.dir, alg, hex[:2], hex+"."+rest+".json"), nil
}

// Get reads the snapshot stored under key. A missing file is ok=false; an
// unreadable or corrupt one is an error naming the file.
func (c *FileCache) Get(_ context.Context, key string) (*Snapshot, bool, error) {
	p, err := c.path(key)
	if err != nil {
		return nil, false, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSnapshotSize+1))
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", p, err)
	}
	if len(data) > maxSnapshotSize {
		return nil, false, fmt.Errorf("read %s: larger than %d bytes", p, maxSnapshotSize)
	}
	var snap Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return nil, false, fmt.Errorf("decode %s (delete it to scan the image again): %w", p, err)
	}
	if snap.SchemaVersion != snapshotVersion {
		return nil, false, nil
	}
	return &snap, true, nil
}

// Put stores snap under key.
func (c *FileCache) Put(_ context.Context, key string, snap *Snapshot) error {
	p, err := c.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(snap)
	if err != nil {
		return fmt.Errorf("encode inventory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("store %s: %w", p, err)
	}
	return nil
}
