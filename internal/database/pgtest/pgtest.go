// Package pgtest runs real PostgreSQL servers for tests: Debian's
// postgresql package (Makefile TEST_DEBS), initdb'd into a temporary
// directory and started as a child of the test binary on a loopback port.
//
// Shared returns one server per test binary, started on first use; each
// test gets its own empty database on it (NewDatabase), dropped when the
// test ends, so tests never see each other's rows. New starts a dedicated
// server a test may stop and start again (outage tests).
//
// The server runs as the "postgres" user when the tests run as root
// (initdb refuses root) and dies with the test binary (the kernel signals
// it when its parent exits). Directories left by earlier binaries that
// died are removed on the next start.
//
// Outside CI a machine without PostgreSQL skips the tests that need it,
// saying why; under CI=true they fail, because a test that needs a server
// must never pass by not running.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"github.com/drydock-project/drydock/internal/testenv"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/drydock-project/drydock/internal/config"
)

// dirPrefix names the temporary directories of test servers.
const dirPrefix = "drydock-pgtest-"

// Server is a running PostgreSQL server.
type Server struct {
	// Port is the loopback TCP port it listens on.
	Port int
	// Dir holds the cluster (Dir/data), the socket and the server log.
	Dir string

	bin  string // directory of postgres and initdb
	cred *syscall.Credential

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	dbCount atomic.Int64
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns the test binary's server, starting it on first use.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		unavailable(t, sharedErr)
	}
	return shared
}

// New starts a dedicated server for t, stopped when t ends.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		_ = s.Stop()
		_ = os.RemoveAll(s.Dir)
	})
	return s
}

// missingError means PostgreSQL is not installed.
type missingError struct{ what string }

func (e *missingError) Error() string { return e.what }

func unavailable(t testing.TB, err error) {
	t.Helper()
	var m *missingError
	if errors.As(err, &m) {
		testenv.Missing(t, "PostgreSQL: %v (install Debian's postgresql package, as `make deps` does)", err)
	}
	t.Fatalf("starting PostgreSQL for the tests: %v", err)
}

// binDir finds the newest installed PostgreSQL's binaries.
func binDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) == 0 {
		if p, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", &missingError{"no PostgreSQL server binary in /usr/lib/postgresql/*/bin or on PATH"}
	}
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) < version(matches[j]) })
	return filepath.Dir(matches[len(matches)-1]), nil
}

func version(p string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
	return n
}

// credential is whom the server runs as: the postgres user when we are
// root, ourselves otherwise.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, &missingError{"running as root and there is no postgres user to run the server as"}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	sweep()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	if err := testenv.OwnDir(dir); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	s := &Server{Dir: dir, bin: bin, cred: cred}
	if err := s.initCluster(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var lastErr error
	for range 5 { // another process may take the free port first
		if s.Port, lastErr = freePort(); lastErr != nil {
			continue
		}
		if lastErr = s.Start(); lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// initCluster puts a fresh cluster in Dir/data: a copy of the cluster
// cached under $DRYDOCK_CACHE/pgtest (initdb'd once per PostgreSQL version,
// under a file lock), or a new initdb when there is no cache.
func (s *Server) initCluster() error {
	data := filepath.Join(s.Dir, "data")
	tmpl, err := s.template()
	if err != nil {
		return s.initdb(data)
	}
	// cp -a keeps the postgres user's ownership and the 0700 modes.
	if out, err := exec.Command("cp", "-a", tmpl, data).CombinedOutput(); err != nil {
		return fmt.Errorf("copying the cached cluster %s: %v\n%s", tmpl, err, out)
	}
	return nil
}

func (s *Server) initdb(data string) error {
	initdb := exec.Command(filepath.Join(s.bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	initdb.Dir = filepath.Dir(data)
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

// template returns the cached initdb'd cluster of this PostgreSQL version,
// making it once.
func (s *Server) template() (string, error) {
	cache, err := config.DefaultCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "pgtest")
	tmpl := filepath.Join(dir, "cluster-"+filepath.Base(filepath.Dir(s.bin)))
	if _, err := os.Stat(filepath.Join(tmpl, "PG_VERSION")); err == nil {
		return tmpl, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(tmpl, "PG_VERSION")); err == nil {
		return tmpl, nil // made while we waited
	}
	// initdb runs as the postgres user, who may not reach the cache (under
	// root's home): make the cluster in the temporary directory, then copy.
	work, err := os.MkdirTemp("", dirPrefix+"initdb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if s.cred != nil {
		if err := os.Chown(work, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return "", err
		}
	}
	if err := s.initdb(filepath.Join(work, "data")); err != nil {
		return "", err
	}
	staged := tmpl + ".tmp"
	_ = os.RemoveAll(staged)
	if out, err := exec.Command("cp", "-a", filepath.Join(work, "data"), staged).CombinedOutput(); err != nil {
		return "", fmt.Errorf("caching the cluster: %v\n%s", err, out)
	}
	if err := os.Rename(staged, tmpl); err != nil {
		return "", err
	}
	return tmpl, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// sweep removes the directories of servers whose test binary is gone,
// stopping a postmaster left running there.
func sweep() {
	testenv.SweepDirs(filepath.Join(os.TempDir(), dirPrefix+"*"), func(d string) {
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			if pm, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0]); err == nil && pm > 0 {
				_ = syscall.Kill(pm, syscall.SIGQUIT)
			}
		}
		_ = os.RemoveAll(d)
	})
}

// Start starts the server (again, after Stop) on its port and waits until
// it accepts connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: server already running")
	}
	logf, err := os.OpenFile(filepath.Join(s.Dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.Dir, "data"),
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(s.Port), "-k", s.Dir,
		// A throwaway cluster: durability off, start and writes cheap.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=400", "-c", "shared_buffers=64MB", "-c", "max_locks_per_transaction=256",
		"-c", "log_min_messages=warning")
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Started from a goroutine whose thread never exits, so the parent
	// death signal fires only when the test binary itself ends.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGINT}
		errc <- cmd.Start()
		select {} // keep this thread alive for the lifetime of the process
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := pgx.Connect(ctx, s.AdminDSN())
		cancel()
		if err == nil {
			_ = c.Close(context.Background())
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
			return fmt.Errorf("postgres exited at start:\n%s", tail(log, 2000))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("postgres not accepting connections after 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd, s.exited = cmd, exited
	return nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Stop shuts the server down (fast shutdown: sessions are cut, as when a
// database server goes away) and waits for it to exit.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
	return nil
}

// AdminDSN connects to the server's "postgres" database as superuser.
func (s *Server) AdminDSN() string { return s.DSN("postgres") }

// DSN connects to database name as superuser.
func (s *Server) DSN(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, name)
}

// NewDatabase creates an empty database for t, dropped when t ends, and
// returns its DSN. A database costs about half a second; most tests want
// NewSchema.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("d%d_%d", os.Getpid(), s.dbCount.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.admin(ctx, "postgres", `CREATE DATABASE `+name); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.admin(ctx, "postgres", `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Logf("dropping test database %s: %v", name, err)
		}
	})
	return s.DSN(name)
}

// testDB is the database that holds the tests' schemas: initdb's own, so
// that no CREATE DATABASE is needed (the server is throwaway).
const testDB = "postgres"

// NewSchema creates an empty schema for t in the server's test database,
// dropped when t ends, and returns a DSN whose search_path is that schema
// alone: whatever the test creates with unqualified names lands there, so
// tests see none of each other's tables, for a few milliseconds instead of
// a CREATE DATABASE. Advisory locks are per database, so tests running at
// once may wait on each other's, never see them.
func (s *Server) NewSchema(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.dbCount.Add(1))
	if err := s.admin(ctx, testDB, `CREATE SCHEMA `+name); err != nil {
		t.Fatalf("creating test schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.admin(ctx, testDB, `DROP SCHEMA IF EXISTS `+name+` CASCADE`); err != nil {
			t.Logf("dropping test schema %s: %v", name, err)
		}
	})
	return s.DSN(testDB) + "&search_path=" + name
}

func (s *Server) admin(ctx context.Context, db, stmt string) error {
	c, err := pgx.Connect(ctx, s.DSN(db))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, stmt)
	return err
}

// DSN returns the DSN of a fresh, empty schema on the shared server for t
// (see Server.NewSchema).
func DSN(t testing.TB) string {
	t.Helper()
	return Shared(t).NewSchema(t)
}
