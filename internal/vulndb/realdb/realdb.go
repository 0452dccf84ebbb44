// Package realdb builds, for tests, a vulnerability database from the real
// feed files of ../shared/vulndata, served over loopback HTTP and fetched
// as `drydock db update` fetches the public feeds. It is a test-support
// package: only _test.go files import it. Tests skip when the data is
// absent (a fresh clone has no ../shared), and fail under CI=true.
package realdb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/sources"
	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
)

// DataDate is the date of the feed data (../shared/vulndata/README.md).
var DataDate = time.Date(2025, 2, 12, 18, 0, 0, 0, time.UTC)

// FeedPaths maps each default source to its files under vulndata, as the
// vulndata README maps the public URLs to them.
var FeedPaths = map[string][]string{
	"osv":            {"/osv/Debian/all.zip", "/osv/Alpine/all.zip"},
	"debian-tracker": {"/debian-security-tracker/data/DSA/list", "/debian-security-tracker/data/DLA/list", "/debian-security-tracker/data/DTSA/list"},
	"alpine-secdb":   {"/alpine-secdb/v3.20/main.json", "/alpine-secdb/v3.21/main.json", "/alpine-secdb/v3.21/community.json"},
	"distro-info":    {"/debian-eol/distro-info-data/2026.10.12-1/debian.csv", "/debian-eol/distro-info-data/2026.10.12-1/ubuntu.csv"},
	"debian-security-support": {"/debian-eol/debian-security-support/14+2026.05.07/security-support.deb11",
		"/debian-eol/debian-security-support/14+2026.05.07/security-support.deb12",
		"/debian-eol/debian-security-support/14+2026.05.07/security-support.deb13"},
}

var built struct {
	once sync.Once
	path string
	err  error
}

// tmpPrefix names the temporary directories of Path; the process id
// follows it, so that a directory left by a test binary that died before
// its TestMain could call Remove is known to be stale. ("pid" keeps the
// random-suffixed directories of older versions, in use or not, from
// being taken for one.)
const tmpPrefix = "drydock-realdb-pid"

// Path returns the path of a database built once per test binary, with the
// clock at DataDate. It skips t without data (fails under CI=true).
//
// The database lives in a temporary directory named after the process:
// TestMain of each package that uses it calls Remove after m.Run, and Path
// removes the directories of processes no longer running (a binary killed
// by a timeout). It is not cached across binaries under $DRYDOCK_CACHE: the
// file is a product of the importers' code as much as of the data, and a
// cache keyed by the data alone would hand a stale database to a test of a
// changed importer.
func Path(t testing.TB) string {
	t.Helper()
	dir := vulndatatest.Dir(t)
	built.once.Do(func() {
		reapStale(os.TempDir())
		tmp, err := os.MkdirTemp("", fmt.Sprintf("%s%d-*", tmpPrefix, os.Getpid()))
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(tmp, "drydock-vuln.db")
		if built.err = Build(context.Background(), dir, built.path); built.err != nil {
			os.RemoveAll(tmp)
		}
	})
	if built.err != nil {
		t.Fatalf("building the real-data database: %v", built.err)
	}
	return built.path
}

// Copy puts a copy of the database at dst (e.g. DATA/vulndb/drydock-vuln.db
// of a server under test), atomically.
func Copy(t testing.TB, dst string) {
	t.Helper()
	b, err := os.ReadFile(Path(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	// Written aside and renamed into place, as "drydock db update" does:
	// a server watching dst never reads a half-written file.
	if err := os.WriteFile(dst+".tmp", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		t.Fatal(err)
	}
}

// Build builds the database at path from the vulndata directory dir.
func Build(ctx context.Context, dir, path string) error {
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	opts := []vulndb.UpdateOption{vulndb.WithClock(func() time.Time { return DataDate })}
	for name, paths := range FeedPaths {
		for _, p := range paths {
			opts = append(opts, vulndb.WithSourceURLs(name, srv.URL+p))
		}
	}
	if _, err := vulndb.Update(ctx, path, sources.Defaults(), opts...); err != nil {
		return fmt.Errorf("building %s from %s: %w", path, dir, err)
	}
	return nil
}

// Remove deletes the database built by Path; call it from TestMain after
// m.Run.
func Remove() {
	if built.path != "" {
		os.RemoveAll(filepath.Dir(built.path))
	}
}

// reapStale removes the directories under tmp that Path made in processes
// that are no longer running.
func reapStale(tmp string) {
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), tmpPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		// Signal 0 checks that the process exists; EPERM means it does
		// (another user's).
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(filepath.Join(tmp, e.Name()))
		}
	}
}
