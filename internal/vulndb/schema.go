package vulndb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// SchemaVersion is the layout of the SQLite file, stored in
// PRAGMA user_version. A file with another version is refused with a
// SchemaError: run "drydock db update" (or pull a matching bundle).
const SchemaVersion = 1

// schemaSQL creates the tables of an empty database. Indexes are created
// after the bulk insert (indexSQL), which is faster than maintaining them.
//
// Times are INTEGER Unix nanoseconds, 0 meaning "not set". Lists
// (references, fixed_by) are JSON arrays. Long texts shared by many rows
// (a CVE's description is repeated for every release and package it names)
// are stored once in details and referenced by id.
const schemaSQL = `
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE details (
	id          INTEGER PRIMARY KEY,
	title       TEXT NOT NULL,
	description TEXT NOT NULL,
	refs        TEXT NOT NULL
);
CREATE TABLE advisories (
	distro          TEXT NOT NULL,
	release         TEXT NOT NULL,
	package         TEXT NOT NULL,
	id              TEXT NOT NULL,
	source          TEXT NOT NULL,
	status          TEXT NOT NULL,
	fixed_version   TEXT NOT NULL,
	severity        TEXT NOT NULL,
	severity_source TEXT NOT NULL,
	fixed_by        TEXT NOT NULL,
	published       INTEGER NOT NULL,
	modified        INTEGER NOT NULL,
	detail_id       INTEGER NOT NULL REFERENCES details(id)
);
CREATE TABLE releases (
	distro   TEXT NOT NULL,
	version  TEXT NOT NULL,
	codename TEXT NOT NULL,
	series   TEXT NOT NULL,
	created  INTEGER NOT NULL,
	released INTEGER NOT NULL,
	eol      INTEGER NOT NULL,
	eol_lts  INTEGER NOT NULL,
	eol_elts INTEGER NOT NULL,
	source   TEXT NOT NULL,
	PRIMARY KEY (distro, version, source)
) WITHOUT ROWID;
CREATE TABLE package_support (
	distro       TEXT NOT NULL,
	release      TEXT NOT NULL,
	package      TEXT NOT NULL,
	kind         TEXT NOT NULL,
	last_version TEXT NOT NULL,
	end_date     INTEGER NOT NULL,
	details      TEXT NOT NULL,
	source       TEXT NOT NULL
);
CREATE TABLE fetches (
	source          TEXT NOT NULL,
	url             TEXT NOT NULL,
	etag            TEXT NOT NULL,
	last_modified   TEXT NOT NULL,
	sha256          TEXT NOT NULL,
	size            INTEGER NOT NULL,
	fetched_at      INTEGER NOT NULL,
	unchanged       INTEGER NOT NULL,
	data_as_of      INTEGER NOT NULL,
	advisories      INTEGER NOT NULL,
	releases        INTEGER NOT NULL,
	package_support INTEGER NOT NULL,
	error           TEXT NOT NULL,
	PRIMARY KEY (source, url)
) WITHOUT ROWID;
`

const indexSQL = `
CREATE INDEX advisories_by_package ON advisories (distro, release, package);
CREATE INDEX package_support_by_package ON package_support (distro, release, package);
`

// Meta keys.
const (
	metaBuiltAt = "built_at"
	metaSchema  = "schema_version"
)

// SchemaError reports a database file written with another schema version.
type SchemaError struct {
	Path      string
	Found     int
	Supported int
}

func (e *SchemaError) Error() string {
	if e.Found == 0 {
		return fmt.Sprintf("vulnerability database %s is not a complete drydock database (schema version 0): run \"drydock db update\"", e.Path)
	}
	return fmt.Sprintf("vulnerability database %s has schema version %d, this drydock reads version %d: run \"drydock db update\" or pull a matching bundle", e.Path, e.Found, e.Supported)
}

// ErrCorrupt is wrapped by errors for files that are not readable SQLite
// databases (truncated, overwritten, not SQLite at all).
var ErrCorrupt = errors.New("corrupt vulnerability database")

// checkHeader reads the 100-byte SQLite header of path and checks that the
// file is a SQLite database at least as long as its header says. It catches
// truncated downloads before SQLite reads past the end of a page.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening vulnerability database: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("opening vulnerability database: %w", err)
	}
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return fmt.Errorf("%w %s: %d bytes, shorter than a SQLite header", ErrCorrupt, path, st.Size())
	}
	if !bytes.Equal(h[:16], []byte("SQLite format 3\x00")) {
		return fmt.Errorf("%w %s: not a SQLite file", ErrCorrupt, path)
	}
	pageSize := int64(binary.BigEndian.Uint16(h[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize&(pageSize-1) != 0 {
		return fmt.Errorf("%w %s: bad page size %d", ErrCorrupt, path, pageSize)
	}
	pages := int64(binary.BigEndian.Uint32(h[28:32]))
	changeCounter := binary.BigEndian.Uint32(h[24:28])
	validFor := binary.BigEndian.Uint32(h[92:96])
	if pages == 0 || changeCounter != validFor {
		return fmt.Errorf("%w %s: header has no valid page count", ErrCorrupt, path)
	}
	if want := pages * pageSize; st.Size() < want {
		return fmt.Errorf("%w %s: truncated: %d bytes, header says %d", ErrCorrupt, path, st.Size(), want)
	}
	return nil
}

// nanos encodes t for the database: Unix nanoseconds, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos decodes nanos.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
