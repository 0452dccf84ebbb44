package vulndb_test

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/drydock-project/drydock/internal/vulndb"
)

// osvLite is a test stand-in for the OSV importer (sources/osv): it reads
// an OSV all.zip and emits one advisory per affected Debian/Alpine
// package and release, with the first fixed event. DSA/DLA/DTSA records
// are emitted under their CVE aliases with FixedBy set.
type osvLite struct{ urls []string }

func (s *osvLite) Name() string          { return "osv" }
func (s *osvLite) DefaultURLs() []string { return s.urls }

type osvRecord struct {
	ID        string    `json:"id"`
	Aliases   []string  `json:"aliases"`
	Summary   string    `json:"summary"`
	Details   string    `json:"details"`
	Modified  time.Time `json:"modified"`
	Published time.Time `json:"published"`
	Affected  []struct {
		Package struct{ Ecosystem, Name string } `json:"package"`
		Ranges  []struct {
			Events []map[string]string `json:"events"`
		} `json:"ranges"`
	} `json:"affected"`
	References []struct{ URL string } `json:"references"`
}

func (s *osvLite) Import(ctx context.Context, url, path string, sink vulndb.Sink) error {
	z, err := zip.OpenReader(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer z.Close()
	for _, f := range z.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := f.Open()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, f.Name, err)
		}
		var rec osvRecord
		err = json.NewDecoder(r).Decode(&rec)
		r.Close()
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, f.Name, err)
		}
		ids, fixedBy := []string{rec.ID}, []string(nil)
		if !strings.HasPrefix(rec.ID, "CVE-") {
			ids, fixedBy = nil, []string{rec.ID}
			for _, a := range rec.Aliases {
				if strings.HasPrefix(a, "CVE-") {
					ids = append(ids, a)
				}
			}
		}
		var refs []string
		for _, r := range rec.References {
			refs = append(refs, r.URL)
		}
		for _, a := range rec.Affected {
			eco, rel, _ := strings.Cut(a.Package.Ecosystem, ":")
			distro := strings.ToLower(eco)
			if (distro != vulndb.Debian && distro != vulndb.Alpine) || rel == "" {
				continue
			}
			rel = strings.TrimPrefix(rel, "v")
			st, fixed := vulndb.StatusAffected, ""
			for _, rg := range a.Ranges {
				for _, ev := range rg.Events {
					if v, ok := ev["fixed"]; ok && fixed == "" {
						st, fixed = vulndb.StatusFixed, v
					}
				}
			}
			for _, id := range ids {
				err := sink.Advisory(vulndb.Advisory{ID: id, Distro: distro, Release: rel, Package: a.Package.Name,
					Status: st, FixedVersion: fixed, Title: rec.Summary, Description: rec.Details, References: refs,
					FixedBy: fixedBy, Published: rec.Published, Modified: rec.Modified})
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// feedServer serves dir over loopback HTTP with ETag and Last-Modified
// (http.ServeContent answers the conditional requests), counting the body
// bytes it sends. fail, when set, may answer instead.
type feedServer struct {
	*httptest.Server
	bytes    atomic.Int64
	requests atomic.Int64
	fail     atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

func newFeedServer(t testing.TB, dir string) *feedServer {
	s := &feedServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if f := s.fail.Load(); f != nil && (*f)(w, r) {
			return
		}
		p := filepath.Join(dir, filepath.FromSlash(filepath.Clean("/"+r.URL.Path)))
		f, err := os.Open(p)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.IsDir() {
			http.NotFound(w, r)
			return
		}
		h := sha256.Sum256(fmt.Appendf(nil, "%s %d %d", p, st.Size(), st.ModTime().UnixNano()))
		w.Header().Set("ETag", `"`+hex.EncodeToString(h[:8])+`"`)
		http.ServeContent(countingWriter{w, &s.bytes}, r, st.Name(), st.ModTime(), f)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *feedServer) setFail(f func(w http.ResponseWriter, r *http.Request) bool) {
	if f == nil {
		s.fail.Store(nil)
		return
	}
	s.fail.Store(&f)
}

func mustRef(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
