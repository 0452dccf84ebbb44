package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/config"
	"github.com/drydock-project/drydock/internal/database"
	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/registry"
)

// TestQuotaStore is the usage store's conformance suite: growth adds up
// across handles (two processes), a collection's usage replaces it while
// what was added during the collection stays on top, empty scopes go.
func TestQuotaStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, newTarget func(t testing.TB) dbtest.Target) {
		ctx := context.Background()
		tg := newTarget(t)
		db1 := tg.Open(t, Component)
		if _, err := db1.Migrate(ctx, Component, Migrations); err != nil {
			t.Fatal(err)
		}
		db2 := tg.Open(t, Component)
		a, b := quotaStore{db: db1}, quotaStore{db: db2}
		r, n := scopeKey(ScopeRepository, "quarantine/app"), scopeKey(ScopeNamespace, "quarantine")
		for range 5 {
			if err := a.add(ctx, []string{r, n}, 100); err != nil {
				t.Fatal(err)
			}
			if err := b.add(ctx, []string{r}, 10); err != nil {
				t.Fatal(err)
			}
		}
		got, err := b.get(ctx, []string{r, n, "namespace:none"})
		if err != nil {
			t.Fatal(err)
		}
		if got[r] != 550 || got[n] != 500 || got["namespace:none"] != 0 {
			t.Fatalf("usage %v, want %s 550, %s 500", got, r, n)
		}

		// A collection starts, 7 bytes are added during it, it computes
		// 300 for the repository and nothing for the namespace (it saw
		// none of them), and something for a new scope.
		if err := a.resetMark(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.add(ctx, []string{r}, 7); err != nil {
			t.Fatal(err)
		}
		other := scopeKey(ScopeRepository, "live/app")
		at := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
		if err := a.replace(ctx, map[string]int64{r: 300, other: 42}, at); err != nil {
			t.Fatal(err)
		}
		rows, err := b.list(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, row := range rows {
			lines = append(lines, fmt.Sprintf("%s=%d@%s", row.scope, row.used, row.computedAt))
		}
		want := []string{"repository:live/app=42@" + ts(at), "repository:quarantine/app=307@" + ts(at)}
		if strings.Join(lines, " ") != strings.Join(want, " ") {
			t.Fatalf("after the collection: %v, want %v (the namespace, computed empty, is dropped)", lines, want)
		}
		// The next collection does not count the 7 bytes twice.
		if err := a.resetMark(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.replace(ctx, map[string]int64{r: 307}, at); err != nil {
			t.Fatal(err)
		}
		if got, _ := a.get(ctx, []string{r, other}); got[r] != 307 || got[other] != 0 {
			t.Fatalf("after a second collection: %v, want %s 307 and %s gone", got, r, other)
		}
	})
}

// quotaSetup is a registry over HTTP with quotas: quarantine/small may
// hold 10,000 bytes, the quarantine namespace 60,000.
func quotaSetup(t *testing.T) (*setup, *Quotas, *recorder, dbtest.Target) {
	t.Helper()
	tg := dbtest.SQLite(t)
	rec := &recorder{}
	var q *Quotas
	rules := []config.QuotaRule{
		{Repository: "quarantine/small", Limit: 10_000},
		{Namespace: "quarantine", Limit: 60_000},
	}
	s := newSetupWith(t, tg, func(db *database.DB) []registry.Option {
		q = NewQuotas(db, rules, rec, nil, nil)
		return []registry.Option{registry.WithQuota(q)}
	})
	return s, q, rec, tg
}

// denied checks a 403 DENIED answer with the numbers.
func denied(t *testing.T, what string, code int, body []byte, scope string, used, limit, requested int64) {
	t.Helper()
	var eb struct {
		Errors []struct {
			Code    string              `json:"code"`
			Message string              `json:"message"`
			Detail  registry.QuotaError `json:"detail"`
		} `json:"errors"`
	}
	if code != http.StatusForbidden || json.Unmarshal(body, &eb) != nil || len(eb.Errors) != 1 || eb.Errors[0].Code != "DENIED" {
		t.Fatalf("%s: %d %s, want 403 DENIED", what, code, body)
	}
	want := registry.QuotaError{Scope: scope, Used: used, Limit: limit, Requested: requested}
	if e := eb.Errors[0]; e.Detail != want || !strings.Contains(e.Message, "quota exceeded for "+scope) {
		t.Fatalf("%s: %+v, want detail %+v", what, e, want)
	}
}

// blocked sends a request whose body never comes: only an answer given
// before the body is read can arrive.
func (s *setup) blocked(method, path string, length int64, headers ...string) (int, []byte) {
	s.t.Helper()
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest(method, s.srv.URL+path, pr)
	if err != nil {
		s.t.Fatal(err)
	}
	req.ContentLength = length
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		s.t.Fatalf("%s %s with a body never sent: %v (the server waited for it)", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// startSession opens an upload session in repo and returns its location.
func (s *setup) startSession(repo string) string {
	s.t.Helper()
	code, h, body := s.do("POST", "/v2/"+repo+"/blobs/uploads/", nil)
	if code != http.StatusAccepted {
		s.t.Fatalf("start upload in %s: %d %s", repo, code, body)
	}
	return h.Get("Location")
}

// pushSized pushes an image whose config and one layer hold about n
// bytes, under tag.
func (s *setup) pushSized(repo, tag string, n int) image {
	s.t.Helper()
	cfg := s.pushBlob(repo, []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","n":%q}`, digest.FromBytes(randomBytes(8)))))
	cfg.MediaType = ocispec.MediaTypeImageConfig
	layer := s.pushBlob(repo, randomBytes(n))
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	desc := s.putManifest(repo, tag, ocispec.MediaTypeImageManifest, body)
	return image{desc: desc, blobs: []ocispec.Descriptor{cfg, layer}, body: body}
}

// usage returns the quotas' usage by "scope:name".
func usageOf(t *testing.T, q *Quotas) map[string]int64 {
	t.Helper()
	qs, err := q.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, u := range qs {
		out[u.Scope+":"+u.Name] = u.Bytes
	}
	return out
}

// storedBytes sums the blob data files under the storage root.
func (s *setup) storedBytes() int64 {
	s.t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(s.root, "docker/registry/v2/blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "data" {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// TestQuotaRefusedAtStart: every way of adding bytes to a repository is
// refused with 403 DENIED and the numbers once a repository or namespace
// quota would be exceeded, and, where the client announces the size,
// before a byte of the body is sent (the body here never comes); each
// refusal is audited. A chunk of unannounced length is refused once
// received and its upload discarded.
func TestQuotaRefusedAtStart(t *testing.T) {
	s, q, rec, _ := quotaSetup(t)
	const small = "quarantine/small"
	img := s.pushSized(small, "v1", 6000)
	used := usageOf(t, q)["repository:"+small]
	if used < 6000 || used > 7000 {
		t.Fatalf("usage of %s after a 6,000-byte layer: %d", small, used)
	}

	// Monolithic POST ?digest= with its Content-Length.
	d := digest.FromBytes(randomBytes(5000))
	code, body := s.blocked("POST", "/v2/"+small+"/blobs/uploads/?digest="+d.String(), 5000)
	denied(t, "monolithic POST", code, body, "repository "+small, used, 10_000, 5000)

	// A chunk announced by Content-Range (PATCH), by Content-Length (PUT).
	loc := s.startSession(small)
	code, body = s.blocked("PATCH", loc, 5000, "Content-Range: 0-4999", "Content-Type: application/octet-stream")
	denied(t, "PATCH with Content-Range", code, body, "repository "+small, used, 10_000, 5000)
	code, body = s.blocked("PUT", loc+"?digest="+d.String(), 5000)
	denied(t, "PUT with Content-Length", code, body, "repository "+small, used, 10_000, 5000)

	// A chunk of unannounced length: refused once received, upload gone.
	loc = s.startSession(small)
	req, _ := http.NewRequest("PATCH", s.srv.URL+loc, io.MultiReader(strings.NewReader(string(randomBytes(5000)))))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	denied(t, "chunked PATCH", resp.StatusCode, b, "repository "+small, used, 10_000, 5000)
	if code := s.status(loc); code != http.StatusNotFound {
		t.Errorf("the refused chunked upload answers %d, want 404 (discarded)", code)
	}

	// A cross-repository mount of a blob too large for the repository.
	big := s.pushSized("quarantine/big", "v1", 8000)
	code, _, body = s.do("POST", "/v2/"+small+"/blobs/uploads/?mount="+big.blobs[1].Digest.String()+"&from=quarantine/big", nil)
	denied(t, "mount", code, body, "repository "+small, used, 10_000, 8000)
	// Mounting what the repository holds already costs nothing.
	if !s.mount(small, img.blobs[1].Digest, small) {
		t.Error("mounting a blob the repository holds was refused")
	}

	// Fill the repository to its limit: a new session is refused.
	s.pushBlob(small, randomBytes(int(10_000-used)))
	code, _, body = s.do("POST", "/v2/"+small+"/blobs/uploads/", nil)
	denied(t, "session at the limit", code, body, "repository "+small, 10_000, 10_000, 0)

	// The namespace's quota: quarantine holds ~19,000 bytes now.
	nsUsed := usageOf(t, q)["namespace:quarantine"]
	if nsUsed < 18_000 || nsUsed > 20_000 {
		t.Fatalf("namespace usage %d, want about 19,000", nsUsed)
	}
	code, body = s.blocked("POST", "/v2/quarantine/other/blobs/uploads/?digest="+d.String(), 45_000)
	denied(t, "namespace", code, body, "namespace quarantine", nsUsed, 60_000, 45_000)
	// No quota applies to live/.
	s.pushBlob("live/app", randomBytes(70_000))

	if n := len(rec.actions(audit.ActionDenied)); n != 7 {
		t.Errorf("%d refusals audited, want 7", n)
	}
	for _, e := range rec.actions(audit.ActionDenied) {
		var detail map[string]any
		_ = json.Unmarshal(e.Detail, &detail)
		if e.Outcome != audit.OutcomeRefused || e.Repository == "" || detail["limit"] == nil || detail["used"] == nil {
			t.Errorf("audit entry %+v %s lacks the numbers", e, e.Detail)
		}
	}
	s.mustPull(small, "v1", img)
}

// TestQuotaEqualsStorageAfterGC: between collections the usage is at
// least what is stored (a blob mounted into a second repository of the
// namespace counts twice, a deleted image still counts); after a
// collection run by the service, the namespace's usage equals the bytes
// stored within 1%, and the repositories' usage is what they keep.
func TestQuotaEqualsStorageAfterGC(t *testing.T) {
	s, q, _, tg := quotaSetup(t)
	a := s.pushSized("quarantine/a", "v1", 9000)
	s.pushSized("quarantine/a", "v2", 7000)
	b := s.pushSized("quarantine/b", "v1", 5000)
	if !s.mount("quarantine/b", a.blobs[1].Digest, "quarantine/a") {
		t.Fatal("mount refused")
	}
	code, _, body := s.do("DELETE", "/v2/quarantine/a/manifests/"+a.desc.Digest.String(), nil)
	if code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", code, body)
	}
	before := usageOf(t, q)["namespace:quarantine"]
	if stored := s.storedBytes(); before < stored {
		t.Fatalf("usage %d below the %d bytes stored", before, stored)
	}

	svc, _ := startService(t, tg, Options{Registry: s.reg, Member: s.member, UploadTimeout: time.Hour, Quotas: q}, &recorder{})
	run := runToEnd(t, svc, Request{Actor: "alice"})
	if run.Report.Collection.FreedBytes < 9000 {
		t.Fatalf("the collection freed %d bytes, want the deleted image's", run.Report.Collection.FreedBytes)
	}
	after := usageOf(t, q)
	stored := s.storedBytes()
	if got := after["namespace:quarantine"]; math.Abs(float64(got-stored)) > 0.01*float64(stored) {
		t.Errorf("namespace usage %d after the collection, stored %d: more than 1%% apart", got, stored)
	}
	// b keeps its image and the mounted layer, which nothing of b lists:
	// the collection deletes that link, so b holds its own image only.
	var bBytes int64 = b.desc.Size
	for _, x := range b.blobs {
		bBytes += x.Size
	}
	if got := after["repository:quarantine/b"]; got != bBytes {
		t.Errorf("quarantine/b usage %d, want %d", got, bBytes)
	}
	qs, err := svc.Quotas(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, u := range qs {
		if u.Scope == ScopeNamespace && u.Name == "quarantine" {
			found = u.Limit == 60_000 && !u.ComputedAt.IsZero()
		}
	}
	if !found {
		t.Errorf("the service's listing %+v lacks the namespace's quota and computation time", qs)
	}
}

// TestQuotaConfig: bad quota rules are refused, each naming its field.
func TestQuotaConfig(t *testing.T) {
	for _, tt := range []struct {
		rule config.QuotaRule
		want string
	}{
		{config.QuotaRule{Limit: 1}, "gc.quotas[0]: set namespace or repository"},
		{config.QuotaRule{Namespace: "quarantine", Repository: "quarantine/a", Limit: 1}, "not both"},
		{config.QuotaRule{Namespace: "quarantine/a", Limit: 1}, "gc.quotas[0].namespace"},
		{config.QuotaRule{Repository: "quarantine/**/x", Limit: 1}, "gc.quotas[0].repository"},
		{config.QuotaRule{Namespace: "live"}, "gc.quotas[0].limit"},
		{config.QuotaRule{Namespace: "live", Limit: -5}, "gc.quotas[0].limit"},
	} {
		c := config.Default()
		c.GC.Quotas = []config.QuotaRule{tt.rule}
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want an error naming %q", tt.rule, err, tt.want)
		}
	}
	c := config.Default()
	c.GC.Quotas = []config.QuotaRule{{Namespace: "live", Limit: 1}, {Namespace: "live", Limit: 2}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "gc.quotas[1].namespace") {
		t.Errorf("a namespace's second quota: %v", err)
	}
	for in, want := range map[string]int64{"20GiB": 20 << 30, "1.5GB": 1_500_000_000, "1048576": 1 << 20, "10 MiB": 10 << 20} {
		if got, err := config.ParseByteSize(in); err != nil || int64(got) != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "ten", "NaN", "1e30TB"} {
		if _, err := config.ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
}
