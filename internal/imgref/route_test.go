package imgref

import (
	"strings"
	"testing"
)

func TestParseRoute(t *testing.T) {
	id := "0123abcd-0123-4567-89ab-0123456789ab"
	tests := []struct {
		path string
		want Route
		ok   bool
	}{
		{"/v2", Route{Kind: RoutePing}, true},
		{"/v2/", Route{Kind: RoutePing}, true},
		{"/v2/_catalog", Route{Kind: RouteCatalog}, true},
		{"/v2/live/manifests/prod", Route{Kind: RouteManifest, Repository: "live", Ref: "prod"}, true},
		{"/v2/live/x/manifests/" + d256, Route{Kind: RouteManifest, Repository: "live/x", Ref: d256}, true},
		{"/v2/live/x/manifests/", Route{Kind: RouteManifest, Repository: "live/x"}, true},
		{"/v2/a/b/c/blobs/" + d256, Route{Kind: RouteBlob, Repository: "a/b/c", Ref: d256}, true},
		{"/v2/live/blobs/uploads/", Route{Kind: RouteUpload, Repository: "live"}, true},
		{"/v2/live/blobs/uploads", Route{Kind: RouteUpload, Repository: "live"}, true},
		{"/v2/live/x/blobs/uploads/" + id, Route{Kind: RouteUpload, Repository: "live/x", Ref: id}, true},
		{"/v2/live/tags/list", Route{Kind: RouteTags, Repository: "live"}, true},
		{"/v2/a/blobs/blobs/uploads/", Route{Kind: RouteUpload, Repository: "a/blobs"}, true},
		{"/v2/a/unknown", Route{}, false},
		{"/v2/live/referrers/" + d256, Route{Kind: RouteReferrers, Repository: "live", Ref: d256}, true},
		// The endpoint is recognised from the end: repository names may
		// contain the endpoint words.
		{"/v2/a/manifests/b/manifests/1", Route{Kind: RouteManifest, Repository: "a/manifests/b", Ref: "1"}, true},
		{"/v2/a/blobs/uploads/x/tags/list", Route{Kind: RouteTags, Repository: "a/blobs/uploads/x"}, true},
		// Unclean paths are resolved as they are: the repository is then
		// invalid (CheckRepository), never another valid one.
		{"/v2//live/x/manifests/1", Route{Kind: RouteManifest, Repository: "/live/x", Ref: "1"}, true},
		{"/v2/quarantine/../live/x/manifests/1", Route{Kind: RouteManifest, Repository: "quarantine/../live/x", Ref: "1"}, true},
		{"/v2/live/x/manifests", Route{}, false},
		{"/v2/live/x", Route{}, false},
		{"/v2x/live/manifests/1", Route{}, false},
		{"/v3/live/manifests/1", Route{}, false},
		{"/api/v1/promote", Route{}, false},
		{"", Route{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseRoute(tt.path)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseRoute(%q) = %+v, %v; want %+v, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzParseRoute: a resolved route's repository is what precedes the
// endpoint in the path, so a path under /v2/live/ never resolves to a
// valid repository outside the live namespace.
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"/v2/live/manifests/1", "/v2/live/x/blobs/uploads/", "/v2/quarantine/../live/x/manifests/1",
		"/v2//live/tags/list", "/v2/_catalog", "/v2/a/manifests/b/manifests/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, ok := ParseRoute(p)
		if !ok || r.Repository == "" {
			return
		}
		if !strings.HasPrefix(p, "/v2/"+r.Repository+"/") {
			t.Fatalf("ParseRoute(%q) = %+v: the repository is not the path's prefix", p, r)
		}
		if strings.HasPrefix(p, "/v2/live/") && ValidRepository(r.Repository) && !IsLive(r.Repository) {
			t.Fatalf("ParseRoute(%q) = %+v: a valid repository outside live", p, r)
		}
	})
}

func TestNamespace(t *testing.T) {
	tests := []struct {
		repo          string
		ns            string
		live, quarant bool
		toLive        string
	}{
		{"live", "live", true, false, "live"},
		{"live/app", "live", true, false, "live/app"},
		{"live/a/b", "live", true, false, "live/a/b"},
		{"lively/app", "lively", false, false, "live/app"},
		{"quarantine", "quarantine", false, true, "live"},
		{"quarantine/a/b", "quarantine", false, true, "live/a/b"},
		{"quarantined/app", "quarantined", false, false, "live/app"},
		{"other/live", "other", false, false, "live/live"},
		{"", "", false, false, "live"},
	}
	for _, tt := range tests {
		if got := Namespace(tt.repo); got != tt.ns {
			t.Errorf("Namespace(%q) = %q, want %q", tt.repo, got, tt.ns)
		}
		if IsLive(tt.repo) != tt.live || IsQuarantine(tt.repo) != tt.quarant {
			t.Errorf("IsLive(%q) = %v, IsQuarantine = %v; want %v, %v", tt.repo, IsLive(tt.repo), IsQuarantine(tt.repo), tt.live, tt.quarant)
		}
		if got := Rebase(tt.repo, Live); got != tt.toLive {
			t.Errorf("Rebase(%q, live) = %q, want %q", tt.repo, got, tt.toLive)
		}
	}
	if got := Rebase("live/a/b", Quarantine); got != "quarantine/a/b" {
		t.Errorf("Rebase(live/a/b, quarantine) = %q", got)
	}
}
