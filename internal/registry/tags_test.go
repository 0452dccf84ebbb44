package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestTagsList(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		c := newTestClient(t, drv)
		img := newTestImage(t, "tags", nil)
		c.expect(c.pushImage("t", "v1", img), http.StatusCreated, "")
		for _, tag := range []string{"b", "a", "C", "latest", "v2"} {
			c.expect(c.pushManifest("t", tag, ocispec.MediaTypeImageManifest, img.manifest), http.StatusCreated, "")
		}
		all := []string{"C", "a", "b", "latest", "v1", "v2"}
		tests := []struct {
			name, query string
			want        []string
			link        string
			status      int
		}{
			{"all", "", all, "", 200},
			{"first page", "?n=2", all[:2], `</v2/t/tags/list?last=a&n=2>; rel="next"`, 200},
			{"next page", "?n=2&last=a", all[2:4], `</v2/t/tags/list?last=latest&n=2>; rel="next"`, 200},
			{"last page", "?n=2&last=latest", all[4:], "", 200},
			{"after all", "?last=v2", []string{}, "", 200},
			{"last not a tag", "?last=bb", all[3:], "", 200},
			{"zero", "?n=0", []string{}, "", 200},
			{"negative", "?n=-1", nil, "", 400},
			{"not a number", "?n=x", nil, "", 400},
			{"huge n is bounded", "?n=999999999", all, "", 200},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := c.with(t)
				r := c.do("GET", "/v2/t/tags/list"+tt.query, nil)
				c.expect(r, tt.status, "")
				if tt.status != 200 {
					return
				}
				var got struct {
					Name string   `json:"name"`
					Tags []string `json:"tags"`
				}
				if err := json.Unmarshal(r.body, &got); err != nil {
					t.Fatal(err)
				}
				if got.Name != "t" || !slices.Equal(got.Tags, tt.want) || got.Tags == nil {
					t.Errorf("got %+v, want %v", got, tt.want)
				}
				if r.header.Get("Link") != tt.link {
					t.Errorf("Link %q, want %q", r.header.Get("Link"), tt.link)
				}
			})
		}
		c.expect(c.do("GET", "/v2/unknown/tags/list", nil), http.StatusNotFound, codeNameUnknown)
	})
}

func TestCatalog(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		c := newTestClient(t, drv)
		img := newTestImage(t, "cat", nil)
		for _, repo := range []string{"b", "a/x", "a", "c/d/e"} {
			c.expect(c.pushImage(repo, "v1", img), http.StatusCreated, "")
		}
		// Blobs or uploads only: not listed.
		c.pushBlob("blobsonly", []byte("x"), "sha256")
		c.do("POST", "/v2/uploadonly/blobs/uploads/", nil)
		// A repository whose only manifest was deleted: not listed.
		c.expect(c.pushImage("gone", "v1", img), http.StatusCreated, "")
		c.expect(c.do("DELETE", "/v2/gone/manifests/"+img.digest.String(), nil), http.StatusAccepted, "")

		repos, err := c.reg.Repositories(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(repos, ",") != "a,a/x,b,c/d/e" {
			t.Errorf("Repositories = %v", repos)
		}
		r := c.do("GET", "/v2/_catalog?n=2", nil)
		c.expect(r, http.StatusOK, "")
		if string(r.body) != `{"repositories":["a","a/x"]}` || r.header.Get("Link") != `</v2/_catalog?last=a%2Fx&n=2>; rel="next"` {
			t.Errorf("catalog page 1: %s %q", r.body, r.header.Get("Link"))
		}
		r = c.do("GET", "/v2/_catalog?n=2&last=a/x", nil)
		if string(r.body) != `{"repositories":["b","c/d/e"]}` {
			t.Errorf("catalog page 2: %s", r.body)
		}
	})
}

// TestTagsSkipsCutOffTagWrites: a crash between creating a tag's
// directory and moving its link into place leaves a directory without a
// link; that is not a tag (listing it would name a manifest no GET finds).
func TestTagsSkipsCutOffTagWrites(t *testing.T) {
	forEachDriver(t, func(t *testing.T, drv storagedriver.StorageDriver) {
		c := newTestClient(t, drv)
		img := newTestImage(t, "ghost", nil)
		c.expect(c.pushImage("g", "real", img), http.StatusCreated, "")
		// What a cut-off Move leaves: the tag's directory, no link.
		if err := drv.PutContent(context.Background(), tagDir("g", "ghost")+"/current/.partial", []byte("x")); err != nil {
			t.Fatal(err)
		}
		r := c.do("GET", "/v2/g/tags/list", nil)
		c.expect(r, http.StatusOK, "")
		var body struct{ Tags []string }
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(body.Tags, []string{"real"}) {
			t.Errorf("tags %v, want [real]", body.Tags)
		}
	})
}
