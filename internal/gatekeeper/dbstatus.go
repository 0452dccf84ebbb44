package gatekeeper

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// DBStatus is what the gate's vulnerability database is and how old its
// data is.
type DBStatus struct {
	Path string `json:"path"`
	// Present is false when there is no database yet (then nothing else
	// is set but Error).
	Present       bool `json:"present"`
	SchemaVersion int  `json:"schemaVersion,omitempty"`
	vulndb.Freshness
	// Warning says why the data is stale ("" when it is not).
	Warning string              `json:"warning,omitempty"`
	Sources []vulndb.SourceMeta `json:"sources,omitempty"`
	// Error is why the database cannot be read.
	Error string `json:"error,omitempty"`
}

// dbMeta caches the database's metadata, read again when the file changes.
type dbMeta struct {
	mu    sync.Mutex
	stamp fileStamp
	meta  vulndb.Meta
	err   error
}

func (c *dbMeta) get(path string) (vulndb.Meta, error) {
	st, err := stampOf(path)
	if err != nil {
		return vulndb.Meta{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st == c.stamp {
		return c.meta, c.err
	}
	db, err := vulndb.Open(path)
	if err != nil {
		c.stamp, c.meta, c.err = st, vulndb.Meta{}, err
		return c.meta, err
	}
	c.stamp, c.meta, c.err = st, db.Meta(), nil
	db.Close()
	return c.meta, nil
}

// DBStatus reports the vulnerability database the gate scans with, its
// data age at the gate's clock and whether it is older than MaxDataAge.
func (k *Keeper) DBStatus(ctx context.Context) (*DBStatus, error) {
	s := &DBStatus{Path: k.dbPath}
	meta, err := k.dbMeta.get(k.dbPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.Error = "no vulnerability database yet: run \"drydock db update\" (or \"drydock db pull\")"
		return s, nil
	case err != nil:
		s.Error = fmt.Sprintf("the vulnerability database cannot be read: %v", err)
		return s, nil
	}
	s.Present, s.SchemaVersion, s.Sources = true, meta.SchemaVersion, meta.Sources
	s.Freshness = meta.Freshness(k.now(), k.maxDataAge)
	s.Warning = s.Freshness.Warning()
	return s, nil
}

// freshness is the database's freshness for a verdict's status (nil when
// there is no readable database: the scans say so).
func (k *Keeper) freshness() *vulndb.Freshness {
	meta, err := k.dbMeta.get(k.dbPath)
	if err != nil {
		return nil
	}
	f := meta.Freshness(k.now(), k.maxDataAge)
	return &f
}

// defaultMaxDataAge applies when Options.MaxDataAge is zero.
const defaultMaxDataAge = vulndb.DefaultMaxDataAge
