// Package database is drydock's one place that opens databases.
//
// The embedded default is SQLite: one file per component under the data
// directory (DATA/gate/gate.db, DATA/auth/auth.db, DATA/audit/audit.db,
// DATA/jobs/jobs.db), shared by the server and the CLI on one machine.
// Scaled out, every component lives in one PostgreSQL database that all
// replicas share, through one connection pool per process.
//
// Stores receive a *DB and write their SQL once, with ? placeholders: DB
// rewrites them to $1, $2, ... for PostgreSQL. Write transactions go
// through DB.Update, which takes SQLite's write lock at BEGIN (so processes
// sharing a file wait instead of failing) and retries transactions that
// PostgreSQL aborted for a serialization failure or deadlock. Tx.Lock takes
// a named lock for the rest of a transaction (a PostgreSQL advisory lock;
// SQLite's write transaction already excludes every other writer), which
// is how "update this record with this function" stays atomic across
// replicas even for a record that does not exist yet.
//
// Schema changes are migrations (see Migrate), applied when a store opens,
// under one advisory lock on PostgreSQL (replicas starting together apply
// each migration once) and in one transaction on SQLite.
//
// # Adding a store
//
// The pattern internal/store, internal/auth and internal/audit follow:
//
//   - a component name (its SQLite file) and a []Migration with the DDL of
//     each engine; version 1 never changes once released, later versions
//     add to it;
//   - one interface for what callers need, and one SQL implementation on
//     *DB whose constructor runs db.Migrate; an Open(ctx, *Opener) for
//     callers;
//   - read-modify-write goes through DB.Update with a function, taking
//     Tx.Lock on the record's key (or a FOR UPDATE row lock) first; the
//     function is the caller's decision, the store only persists it;
//   - a conformance suite in a <pkg>test package, Run(t, factory), that
//     the package's own test runs on every engine with dbtest.Each,
//     including concurrent updates from two handles (two processes);
//   - the component is listed in internal/state, so that migrate and
//     store copy cover it.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Driver names a database engine.
type Driver string

// The drivers drydock supports.
const (
	SQLite   Driver = "sqlite"
	Postgres Driver = "postgres"
)

// Config selects the database engine. The zero value is the embedded
// default: SQLite files in the data directory.
type Config struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver Driver `yaml:"driver"`
	// DSN is the PostgreSQL connection string, as a URL
	// (postgres://user:pass@host:5432/drydock?sslmode=verify-full) or
	// key=value pairs; pool_max_conns sets the pool size (default 16). It
	// must be empty for SQLite, whose files live in the data directory.
	DSN string `yaml:"dsn"`
}

// DefaultMaxConns is the PostgreSQL pool size of one process unless the
// DSN sets pool_max_conns.
const DefaultMaxConns = 16

// Validate checks the configuration; errors name the field.
func (c Config) Validate() error {
	switch c.Driver {
	case "", SQLite:
		if c.DSN != "" {
			return errors.New("database.dsn: only for driver postgres; SQLite files live in the data directory")
		}
	case Postgres:
		if c.DSN == "" {
			return errors.New("database.dsn: required for driver postgres, e.g. postgres://drydock@db.example:5432/drydock")
		}
		if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
			return fmt.Errorf("database.dsn: %s", redactErr(err, c.DSN))
		}
	default:
		return fmt.Errorf("database.driver: %q, want sqlite or postgres", c.Driver)
	}
	return nil
}

// Effective returns the driver in use ("" means SQLite).
func (c Config) Effective() Driver {
	if c.Driver == "" {
		return SQLite
	}
	return c.Driver
}

// Describe names the database for logs and messages, without a password.
func (c Config) Describe(dataDir string) string {
	if c.Effective() == SQLite {
		return "sqlite:" + dataDir
	}
	return "postgres:" + RedactDSN(c.DSN)
}

// nameRE is the form of component names (they become file names).
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// Opener opens the databases of one installation for one process. On
// PostgreSQL every component shares one connection pool, created by the
// first Open and closed with the last DB. Its methods are safe for
// concurrent use.
type Opener struct {
	cfg  Config
	data string

	mu   sync.Mutex
	pool *pgxpool.Pool
	std  *sql.DB
	refs int
}

// NewOpener returns an Opener for cfg, with SQLite files under dataDir.
func NewOpener(cfg Config, dataDir string) (*Opener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Effective() == SQLite && dataDir == "" {
		return nil, errors.New("database: no data directory for the SQLite files")
	}
	return &Opener{cfg: cfg, data: dataDir}, nil
}

// Config returns the opener's configuration.
func (o *Opener) Config() Config { return o.cfg }

// Driver returns the engine the opener opens.
func (o *Opener) Driver() Driver { return o.cfg.Effective() }

// SQLitePath is where the SQLite file of component name lives under the
// data directory.
func SQLitePath(dataDir, name string) string { return filepath.Join(dataDir, name, name+".db") }

// OpenOption adjusts how one component's database is opened.
type OpenOption func(*openOptions)

type openOptions struct{ singleConn bool }

// SingleConnection limits a SQLite database to one connection, as River's
// SQLite driver recommends. It has no effect on PostgreSQL.
func SingleConnection() OpenOption { return func(o *openOptions) { o.singleConn = true } }

// sqliteQuery holds the connection settings of every SQLite file:
//   - busy_timeout first, so that the switch to WAL waits for other processes;
//   - WAL, so that readers never block the writer;
//   - synchronous FULL: an acknowledged write survives power loss;
//   - _txlock=immediate: transactions take the write lock at BEGIN, so two
//     processes sharing a file wait on busy_timeout instead of failing a
//     read-to-write upgrade with SQLITE_BUSY;
//   - the page cache of each connection (see pageCacheKiB).
func sqliteQuery(name string) string {
	return url.Values{
		"_pragma": []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)",
			fmt.Sprintf("cache_size(-%d)", pageCacheKiB(name)), "temp_store(2)"},
		"_txlock": []string{"immediate"},
	}.Encode()
}

// Page caches of SQLite connections, in KiB. Each connection has its own
// and fills it up to the size of the file; it lives outside the Go heap
// (modernc's libc allocates with mmap), so it adds to the process's RSS
// beside what GOMEMLIMIT bounds.
const (
	// largePageCacheKiB is for the components whose queries walk large
	// tables: the gate's findings index (writing it took 5.69 s of CPU
	// on 500 images with SQLite's default 2 MB, 3.26 s with this; the
	// web UI's CVE and dashboard queries) and the registry's metadata,
	// which a collection walks.
	largePageCacheKiB = 64 << 10
	// smallPageCacheKiB is for the rest (auth, audit, jobs, workflow,
	// exceptions, kube, gc): small files, or reads by key.
	smallPageCacheKiB = 8 << 10
)

// pageCacheKiB returns the page cache of a connection to component name.
func pageCacheKiB(name string) int {
	switch name {
	case "gate", "registry":
		return largePageCacheKiB
	}
	return smallPageCacheKiB
}

// Open opens the database of component name ("gate", "auth", ...),
// creating a SQLite file when missing. Close the DB when done.
func (o *Opener) Open(ctx context.Context, name string, opts ...OpenOption) (*DB, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("database: invalid component name %q", name)
	}
	if o.Driver() == Postgres {
		return o.openPostgres(ctx, name)
	}
	return OpenFile(ctx, SQLitePath(o.data, name), opts...)
}

// OpenFile opens (creating, mode 0600 in a 0700 directory) the SQLite
// database at path, with the settings every drydock SQLite file has. Most
// callers want Opener.Open, which names the file after the component.
func OpenFile(ctx context.Context, path string, opts ...OpenOption) (*DB, error) {
	var oo openOptions
	for _, f := range opts {
		f(&oo)
	}
	name := strings.TrimSuffix(filepath.Base(path), ".db")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	// Create the file 0600 before SQLite does (it would use the umask).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	f.Close()
	u := url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: sqliteQuery(name)}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	if oo.singleConn {
		db.SetMaxOpenConns(1)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return &DB{name: name, where: path, driver: SQLite, sql: db, release: db.Close}, nil
}

func (o *Opener) openPostgres(ctx context.Context, name string) (*DB, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pool == nil {
		pc, err := pgxpool.ParseConfig(o.cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("database: %s", redactErr(err, o.cfg.DSN))
		}
		if !strings.Contains(o.cfg.DSN, "pool_max_conns") {
			pc.MaxConns = DefaultMaxConns
		}
		if pc.ConnConfig.RuntimeParams == nil {
			pc.ConnConfig.RuntimeParams = map[string]string{}
		}
		if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
			pc.ConnConfig.RuntimeParams["application_name"] = "drydock"
		}
		pool, err := pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			return nil, fmt.Errorf("database %s: %s", RedactDSN(o.cfg.DSN), redactErr(err, o.cfg.DSN))
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("database %s: %s", RedactDSN(o.cfg.DSN), redactErr(err, o.cfg.DSN))
		}
		o.pool, o.std = pool, stdlib.OpenDBFromPool(pool)
	}
	o.refs++
	return &DB{name: name, where: RedactDSN(o.cfg.DSN), driver: Postgres, sql: o.std, pool: o.pool, release: o.release}, nil
}

// Ping checks that the database answers: the PostgreSQL server (when a
// component has opened the pool), nothing for SQLite files, which are as
// available as the disk they are on.
func (o *Opener) Ping(ctx context.Context) error {
	o.mu.Lock()
	pool := o.pool
	o.mu.Unlock()
	if pool == nil {
		return nil
	}
	c, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("database %s: %s", RedactDSN(o.cfg.DSN), redactErr(err, o.cfg.DSN))
	}
	defer c.Release()
	if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
		return fmt.Errorf("database %s: %s", RedactDSN(o.cfg.DSN), redactErr(err, o.cfg.DSN))
	}
	return nil
}

// release drops one reference to the shared pool, closing it with the last.
func (o *Opener) release() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refs--
	if o.refs > 0 || o.pool == nil {
		return nil
	}
	err := o.std.Close()
	o.pool.Close()
	o.pool, o.std = nil, nil
	return err
}

// DB is one component's database.
type DB struct {
	name, where string
	driver      Driver
	sql         *sql.DB
	pool        *pgxpool.Pool // PostgreSQL only

	keyed keyedMutex // WithLock on SQLite

	closeOnce sync.Once
	closeErr  error
	release   func() error
}

// Name is the component the DB was opened for.
func (db *DB) Name() string { return db.name }

// String names the database for messages: the SQLite file or the
// PostgreSQL server (without a password).
func (db *DB) String() string { return db.where }

// Driver is the engine.
func (db *DB) Driver() Driver { return db.driver }

// SQL is the underlying *sql.DB, for libraries that take one (River's
// SQLite driver). Queries through it are not rewritten.
func (db *DB) SQL() *sql.DB { return db.sql }

// Pool is the PostgreSQL connection pool (nil on SQLite), for libraries
// that need pgx (River's pgx driver).
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close releases the database: the SQLite file, or this component's share
// of the PostgreSQL pool. It is safe to call more than once.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { db.closeErr = db.release() })
	return db.closeErr
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("database %s: %w", db.where, err)
	}
	return nil
}

// RedactDSN returns dsn with any password replaced by "xxxxx".
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.Host != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return passwordRE.ReplaceAllString(dsn, "password=xxxxx")
}

var passwordRE = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// redactErr renders err with dsn's password, if it appears, removed.
func redactErr(err error, dsn string) string {
	msg := err.Error()
	if u, perr := url.Parse(dsn); perr == nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return passwordRE.ReplaceAllString(msg, "password=xxxxx")
}
