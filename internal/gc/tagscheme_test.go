package gc

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/database/dbtest"
	"github.com/drydock-project/drydock/internal/imgref"
	"github.com/drydock-project/drydock/internal/registry"
)

// pushSignature pushes a cosign tag-scheme signature of subject (a
// simple-signing layer, no subject field) under its sha256-<hex>.sig tag.
func (s *setup) pushSignature(repo string, subject digest.Digest) image {
	s.t.Helper()
	cfg := s.pushBlob(repo, []byte(`{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}`))
	cfg.MediaType = ocispec.MediaTypeImageConfig
	payload := s.pushBlob(repo, []byte(`{"critical":{"image":{"docker-manifest-digest":"`+subject.String()+`"}},"n":"`+digest.FromBytes(randomBytes(8)).String()+`"}`))
	payload.MediaType = imgref.MediaTypeCosignSimpleSigning
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{payload}}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	desc := s.putManifest(repo, imgref.TagSchemeTag(subject, imgref.SuffixSignature), ocispec.MediaTypeImageManifest, body)
	return image{desc: desc, blobs: []ocispec.Descriptor{cfg, payload}, body: body}
}

// tagsOf lists the collection's items of a kind as "repo:name".
func itemsOf(rep *registry.Report, kind string) []string {
	var out []string
	for _, it := range rep.Items {
		if it.Kind == kind {
			n := it.Name
			if n == "" {
				n = it.Digest
			}
			out = append(out, it.Repository+":"+n)
		}
	}
	return out
}

// TestTagSchemeFollowsSubject: a tag-scheme signature whose subject was
// deleted from its repository is untagged and collected with what only it
// references, and a dry run lists it; the signature of a kept subject, of
// a subject kept in another repository, and a recent one are kept.
func TestTagSchemeFollowsSubject(t *testing.T) {
	s := newSetup(t, dbtest.SQLite(t))
	kept := s.pushImage("app", "v1", 1, nil, nil)
	keptSig := s.pushSignature("app", kept.desc.Digest)
	gone := s.pushImage("app", "v2", 1, nil, nil)
	goneSig := s.pushSignature("app", gone.desc.Digest)
	// Signatures stored in another repository than their image.
	elsewhere := s.pushSignature("sigs", kept.desc.Digest)
	if code, _, _ := s.do("DELETE", "/v2/app/manifests/"+gone.desc.Digest.String(), nil); code != http.StatusAccepted {
		t.Fatalf("delete subject: %d", code)
	}
	goneTag := "app:" + imgref.TagSchemeTag(gone.desc.Digest, imgref.SuffixSignature)

	dry := s.collect(registry.CollectOptions{DryRun: true})
	if got := itemsOf(dry, registry.KindTag); len(got) != 1 || got[0] != goneTag {
		t.Errorf("dry run lists tags %v, want [%s]", got, goneTag)
	}
	rep := s.collect(registry.CollectOptions{})
	if got := itemsOf(rep, registry.KindTag); len(got) != 1 || got[0] != goneTag {
		t.Errorf("the run deleted tags %v, want [%s]", got, goneTag)
	}
	if len(dry.Items) != len(rep.Items) {
		t.Errorf("dry run listed %d items, the run deleted %d:\n%v\n%v", len(dry.Items), len(rep.Items), dry.Items, rep.Items)
	}
	if got := itemsOf(rep, registry.KindManifest); !strings.Contains(strings.Join(got, " "), goneSig.desc.Digest.String()) {
		t.Errorf("the orphan signature's manifest was not collected: %v", got)
	}
	if code := s.status("/v2/app/manifests/" + imgref.TagSchemeTag(gone.desc.Digest, imgref.SuffixSignature)); code != http.StatusNotFound {
		t.Errorf("orphan signature tag: %d, want 404", code)
	}
	onDisk := s.blobsOnDisk()
	for _, b := range goneSig.blobs[1:] {
		if onDisk[b.Digest] {
			t.Errorf("the orphan signature's payload %s is still stored", b.Digest)
		}
	}
	s.mustPull("app", "v1", kept)
	s.mustPull("app", imgref.TagSchemeTag(kept.desc.Digest, imgref.SuffixSignature), keptSig)
	s.mustPull("sigs", imgref.TagSchemeTag(kept.desc.Digest, imgref.SuffixSignature), elsewhere)

	// A second run finds nothing more.
	if again := s.collect(registry.CollectOptions{}); len(again.Items) != 0 {
		t.Errorf("second run deleted %v", again.Items)
	}

	// A signature younger than the grace is kept, even without a subject
	// (a copy may push it first).
	late := s.pushSignature("app", digest.FromString("not pushed yet"))
	rep = s.collect(registry.CollectOptions{Grace: 3600e9})
	if got := itemsOf(rep, registry.KindTag); len(got) != 0 {
		t.Errorf("a recent signature's tag was deleted: %v", got)
	}
	s.mustPull("app", imgref.TagSchemeTag(digest.FromString("not pushed yet"), imgref.SuffixSignature), late)
}

// hookCoordinator runs before once, before the first claim that holds a
// key with the given prefix.
type hookCoordinator struct {
	registry.Coordinator
	prefix string
	once   sync.Once
	before func()
}

func (h *hookCoordinator) Claim(ctx context.Context, keys []string) ([]string, error) {
	for _, k := range keys {
		if strings.HasPrefix(k, h.prefix) {
			h.once.Do(h.before)
			break
		}
	}
	return h.Coordinator.Claim(ctx, keys)
}

// collectHooked runs a collection whose first claim of a key starting with
// prefix first runs before (a write landing between the listing and the
// claim).
func (s *setup) collectHooked(prefix string, before func()) *registry.Report {
	s.t.Helper()
	ctx := context.Background()
	c, err := s.member.Lead(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Finish(ctx)
	rep, err := s.reg.Collect(ctx, registry.CollectOptions{Coordinator: &hookCoordinator{Coordinator: c, prefix: prefix, before: before}})
	if err != nil {
		s.t.Fatal(err)
	}
	return rep
}

// TestTagSchemeSubjectPushedDuringCollection: the subject of an orphan
// signature pushed again after the listing (and before the sweep) keeps
// the signature's tag and content; so does a re-signing that moves the
// tag to a new signature (the new one is kept, pointing where it was
// moved).
func TestTagSchemeSubjectPushedDuringCollection(t *testing.T) {
	t.Run("subject pushed", func(t *testing.T) {
		s := newSetup(t, dbtest.SQLite(t))
		img := s.pushImage("app", "v1", 1, nil, nil)
		sig := s.pushSignature("app", img.desc.Digest)
		if code, _, _ := s.do("DELETE", "/v2/app/manifests/"+img.desc.Digest.String(), nil); code != http.StatusAccepted {
			t.Fatalf("delete subject: %d", code)
		}
		tag := imgref.TagSchemeTag(img.desc.Digest, imgref.SuffixSignature)
		rep := s.collectHooked("tag/", func() {
			// The image's blobs are still stored (claimed after this
			// repository's sweep): the push stores its manifest.
			s.putManifest("app", "v1", ocispec.MediaTypeImageManifest, img.body)
		})
		if got := itemsOf(rep, registry.KindTag); len(got) != 0 {
			t.Errorf("deleted tags %v though the subject was pushed during the run", got)
		}
		s.mustPull("app", "v1", img)
		s.mustPull("app", tag, sig)
	})
	t.Run("re-signed", func(t *testing.T) {
		s := newSetup(t, dbtest.SQLite(t))
		subject := digest.FromString("a deleted image")
		old := s.pushSignature("app", subject)
		tag := imgref.TagSchemeTag(subject, imgref.SuffixSignature)
		var resigned image
		rep := s.collectHooked("tag/", func() { resigned = s.pushSignature("app", subject) })
		if got := itemsOf(rep, registry.KindTag); len(got) != 0 {
			t.Errorf("deleted tags %v though the tag was moved during the run", got)
		}
		s.mustPull("app", tag, resigned)
		if resigned.desc.Digest == old.desc.Digest {
			t.Fatal("the re-signing wrote the same manifest")
		}
		// The next run, with nothing pushed, collects it.
		rep = s.collect(registry.CollectOptions{})
		if got := itemsOf(rep, registry.KindTag); len(got) != 1 {
			t.Errorf("next run deleted tags %v, want the re-signed one", got)
		}
	})
}
