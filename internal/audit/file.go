package audit

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// DefaultPath is where drydock keeps the audit log under its data
// directory.
func DefaultPath(dataDir string) string { return filepath.Join(dataDir, "audit", "audit.db") }

// OpenFile opens (creating when missing) the SQLite audit log at path, for
// one process among several: the server appends, "drydock audit" reads.
// close releases the database.
func OpenFile(path string, opts ...Option) (l *Log, close func() error, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	q := url.Values{"_pragma": []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)"}}
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	b, err := NewSQLite(db)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	if l, err = New(b, opts...); err != nil {
		db.Close()
		return nil, nil, err
	}
	return l, db.Close, nil
}
