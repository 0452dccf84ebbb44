package vulndb_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
)

func fastRetries() vulndb.UpdateOption { return vulndb.WithRetries(2, time.Millisecond) }

func TestUpdateHTTPCaching(t *testing.T) {
	dir := vulndatatest.Dir(t)
	srv := newFeedServer(t, dir)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vulndb", "drydock-vuln.db")
	src := &osvLite{urls: []string{srv.URL + "/osv/Debian/all.zip", srv.URL + "/osv/Alpine/all.zip"}}

	var mu sync.Mutex
	var reports []vulndb.Progress
	progress := vulndb.WithProgress(func(p vulndb.Progress) {
		mu.Lock()
		reports = append(reports, p)
		mu.Unlock()
	})
	rep, err := vulndb.Update(ctx, path, []vulndb.Source{src}, clock(t0), progress)
	if err != nil {
		t.Fatal(err)
	}
	first := srv.bytes.Load()
	st1, _ := os.Stat(filepath.Join(dir, "osv/Debian/all.zip"))
	st2, _ := os.Stat(filepath.Join(dir, "osv/Alpine/all.zip"))
	if want := st1.Size() + st2.Size(); first != want || rep.Downloaded != want {
		t.Errorf("first update served %d bytes, reported %d, want %d", first, rep.Downloaded, want)
	}
	if rep.Unchanged() {
		t.Error("first update reported unchanged")
	}
	s := rep.Sources[0]
	if s.Advisories < 10000 || len(s.Fetches) != 2 || s.Fetches[0].ETag == "" || s.Fetches[0].LastModified == "" {
		t.Errorf("first update: %+v", s)
	}
	// The newest OSV Debian record is from 2025-02-12T16:46:00Z (README).
	if want := time.Date(2025, 2, 12, 16, 46, 0, 0, time.UTC); !s.Fetches[0].DataAsOf.Truncate(time.Second).Equal(want) {
		t.Errorf("data as of %v, want %v", s.Fetches[0].DataAsOf, want)
	}
	var downloads, dones int
	for _, p := range reports {
		switch p.Phase {
		case "download":
			downloads++
		case "done":
			dones++
		}
	}
	if downloads == 0 || dones != 2 {
		t.Errorf("progress: %d download reports, %d done, want some and 2", downloads, dones)
	}

	db := open(t, path)
	got, err := db.Advisories(ctx, "debian", "11", "openssl")
	if err != nil || len(got) < 50 {
		t.Fatalf("debian 11 openssl: %d advisories, %v", len(got), err)
	}
	before := db.Meta()

	// Second update: nothing changed, nothing downloaded.
	later := t0.Add(time.Hour)
	rep, err = vulndb.Update(ctx, path, []vulndb.Source{src}, clock(later))
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.bytes.Load() - first; n != 0 || rep.Downloaded != 0 {
		t.Errorf("second update served %d bytes, reported %d, want 0", n, rep.Downloaded)
	}
	if !rep.Unchanged() {
		t.Errorf("second update not unchanged: %+v", rep.Sources)
	}
	db2 := open(t, path)
	after := db2.Meta()
	if !after.BuiltAt.Equal(later) || after.Sources[0].Advisories != before.Sources[0].Advisories ||
		after.Sources[0].Fetches[0].SHA256 != before.Sources[0].Fetches[0].SHA256 || !after.Sources[0].Fetches[0].Unchanged {
		t.Errorf("meta after unchanged update:\n%+v\nbefore:\n%+v", after, before)
	}
	got2, _ := db2.Advisories(ctx, "debian", "11", "openssl")
	if len(got2) != len(got) {
		t.Errorf("advisories changed: %d -> %d", len(got), len(got2))
	}

	// A damaged cached copy is not trusted: the next update downloads again.
	ents, err := filepath.Glob(filepath.Join(filepath.Dir(path), "cache", "*", "all.zip"))
	if err != nil || len(ents) != 2 {
		t.Fatalf("cache: %v, %v", ents, err)
	}
	if err := os.WriteFile(ents[0], []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	served := srv.bytes.Load()
	rep, err = vulndb.Update(ctx, path, []vulndb.Source{src}, clock(later))
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.bytes.Load() - served; n == 0 || n != rep.Downloaded || rep.Unchanged() {
		t.Errorf("after damaging the cache: served %d, reported %d, unchanged %v", n, rep.Downloaded, rep.Unchanged())
	}

	// A local file in place of the URL.
	rep, err = vulndb.Update(ctx, path, []vulndb.Source{src}, clock(later),
		vulndb.WithSourceURLs("osv", filepath.Join(dir, "osv/Alpine/all.zip")))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Downloaded != 0 || rep.Sources[0].Advisories == 0 || rep.Sources[0].Fetches[0].URL != filepath.Join(dir, "osv/Alpine/all.zip") {
		t.Errorf("local file update: %+v", rep.Sources[0])
	}
}

func TestUpdateFetchErrors(t *testing.T) {
	dir := vulndatatest.Dir(t)
	srv := newFeedServer(t, dir)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "drydock-vuln.db")
	alpine := srv.URL + "/osv/Alpine/all.zip"
	src := &osvLite{urls: []string{alpine}}
	if _, err := vulndb.Update(ctx, path, []vulndb.Source{src}, clock(t0)); err != nil {
		t.Fatal(err)
	}
	// Drop the download cache so that every attempt below downloads.
	cache := filepath.Join(filepath.Dir(path), "cache")

	dead := newFeedServer(t, dir)
	dead.Close()
	for _, tc := range []struct {
		name   string
		url    string
		fail   func(w http.ResponseWriter, r *http.Request) bool
		want   string
		status int
		tries  int64
	}{
		{name: "500", url: alpine, want: "500 Internal Server Error", status: 500, tries: 3,
			fail: func(w http.ResponseWriter, r *http.Request) bool { http.Error(w, "oops", 500); return true }},
		{name: "404", url: srv.URL + "/osv/Nope/all.zip", want: "404 Not Found", status: 404, tries: 1},
		{name: "truncated", url: alpine, want: "truncated body", tries: 3,
			fail: func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Length", "1000000")
				w.Write([]byte("PK\x03\x04 short"))
				return true
			}},
		{name: "bad zip", url: alpine, want: "bad zip", tries: 1,
			fail: func(w http.ResponseWriter, r *http.Request) bool {
				w.Write([]byte("this is not a zip file"))
				return true
			}},
		{name: "too large", url: alpine, want: "more than the limit", tries: 1},
		{name: "unreachable", url: dead.URL + "/osv/Alpine/all.zip", want: "unreachable", tries: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(cache)
			srv.setFail(tc.fail)
			defer srv.setFail(nil)
			n0 := srv.requests.Load()
			opts := []vulndb.UpdateOption{clock(t0.Add(time.Hour)), fastRetries(), vulndb.WithSourceURLs("osv", tc.url)}
			if tc.name == "too large" {
				opts = append(opts, vulndb.WithMaxDownload(1000))
			}
			_, err := vulndb.Update(ctx, path, []vulndb.Source{src}, opts...)
			var fe *vulndb.FetchError
			if !errors.As(err, &fe) || fe.Source != "osv" || fe.URL != tc.url || fe.StatusCode != tc.status ||
				!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.url) {
				t.Fatalf("err = %v (%+v), want a FetchError naming osv, %s, status %d and %q", err, fe, tc.url, tc.status, tc.want)
			}
			if n := srv.requests.Load() - n0; n != tc.tries {
				t.Errorf("%d requests, want %d", n, tc.tries)
			}
			db := open(t, path)
			if !db.Meta().BuiltAt.Equal(t0) {
				t.Error("the old database was replaced")
			}
			assertNoTempFiles(t, filepath.Dir(path))
		})
	}

	// A 503 that recovers is retried.
	os.RemoveAll(cache)
	var calls int
	srv.setFail(func(w http.ResponseWriter, r *http.Request) bool {
		calls++
		if calls == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	if _, err := vulndb.Update(ctx, path, []vulndb.Source{src}, clock(t0.Add(2*time.Hour)), fastRetries()); err != nil {
		t.Fatalf("retry after 503: %v", err)
	}
	srv.setFail(nil)

	// keep-going: the failing source keeps its old records.
	srv.setFail(func(w http.ResponseWriter, r *http.Request) bool { http.Error(w, "gone", http.StatusGone); return true })
	os.RemoveAll(cache)
	rep, err := vulndb.Update(ctx, path, []vulndb.Source{src}, clock(t0.Add(3*time.Hour)), fastRetries(), vulndb.WithKeepGoing(true))
	srv.setFail(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Sources[0]; s.Err == nil || s.Advisories == 0 {
		t.Errorf("keep-going report: %+v", s)
	}
}
