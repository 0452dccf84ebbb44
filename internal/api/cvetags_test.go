package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/drydock-project/drydock/internal/attest/attesttest"
	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/scan"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/store/storetest"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// The CVE and package answers list each digest's tags as a real registry
// knows them: in its quarantine/ repository and, once promoted, in live/.
func TestCVERouteTags(t *testing.T) {
	ctx := context.Background()
	reg, _ := attesttest.Registry(t)
	app := attesttest.PutImage(t, reg, "quarantine/app", "1.0", `{"app":1}`).Digest.String()
	attesttest.PutImage(t, reg, "quarantine/app", "latest", `{"app":1}`)
	attesttest.PutImage(t, reg, "live/app", "1.0", `{"app":1}`)
	attesttest.PutImage(t, reg, "quarantine/app", "0.9", `{"app":0}`) // another digest, not scanned
	other := attesttest.PutImage(t, reg, "quarantine/other", "2.0", `{"other":2}`).Digest.String()
	untagged := storetest.Digest(7) // scanned, then untagged: no tags, no error

	s, err := store.Open(ctx, dbtest.SQLite(t).Opener(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, c := range []struct {
		digest, repo string
		promoted     bool
	}{{app, "quarantine/app", true}, {other, "quarantine/other", false}, {untagged, "quarantine/gone", false}} {
		if err := s.PutScan(ctx, storetest.ScanOf(c.digest, c.repo, map[string][]scan.Finding{"": {
			storetest.Finding("CVE-2024-1", "libc6", "glibc", vulndb.SeverityHigh, "2.1")}})); err != nil {
			t.Fatal(err)
		}
		im := store.Image{Repository: c.repo, Verdict: gate.Verdict{State: gate.StatePass}, Promoted: c.promoted}
		if _, err := s.UpdateImage(ctx, c.digest, func(*store.Image) (*store.Image, error) { return &im, nil }); err != nil {
			t.Fatal(err)
		}
	}
	h := Handler(Options{Gate: &fakeGate{}, Index: s, Tags: reg})
	for _, path := range []string{"/api/v1/cves/CVE-2024-1", "/api/v1/packages/glibc"} {
		code, b := get(t, h, path)
		var w WhereResponse
		if err := json.Unmarshal(b, &w); err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		got := map[string]string{}
		for _, im := range w.Images {
			got[im.Digest] = fmt.Sprint(im.Tags)
		}
		want := map[string]string{app: "[live/app:1.0 quarantine/app:1.0 quarantine/app:latest]", other: "[quarantine/other:2.0]", untagged: "[]"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("GET %s: tags\n got %v\nwant %v", path, got, want)
		}
		if w.TagsTruncated {
			t.Errorf("GET %s: tags truncated", path)
		}
	}
	// Without the registry, no tags and no error.
	code, b := get(t, Handler(Options{Gate: &fakeGate{}, Index: s}), "/api/v1/cves/CVE-2024-1")
	if code != http.StatusOK {
		t.Fatalf("without tags: %d %s", code, b)
	}
}
