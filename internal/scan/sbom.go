package scan

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/drydock-project/drydock/internal/buildinfo"
)

// ImageInventory is Image that also returns the inventory the report was
// matched from (from the InventoryCache when the image was seen before):
// every installed package, for an SBOM.
func (s *Scanner) ImageInventory(ctx context.Context, img v1.Image) (*Report, *Snapshot, error) {
	mem := &memCache{}
	inner := s.cache
	if inner == nil {
		inner = mem
	}
	c := &tapCache{inner: inner}
	s2 := *s
	s2.cache = c
	rep, err := s2.Image(ctx, img)
	if err != nil {
		return nil, nil, err
	}
	if c.snap == nil {
		return nil, nil, fmt.Errorf("scanning %s: no inventory recorded", rep.Artifact.Digest)
	}
	return rep, c.snap, nil
}

// tapCache passes Get and Put to inner and keeps the snapshot it saw.
type tapCache struct {
	inner InventoryCache
	snap  *Snapshot
}

func (t *tapCache) Get(ctx context.Context, key string) (*Snapshot, bool, error) {
	snap, ok, err := t.inner.Get(ctx, key)
	if ok {
		t.snap = snap
	}
	return snap, ok, err
}

func (t *tapCache) Put(ctx context.Context, key string, snap *Snapshot) error {
	t.snap = snap
	return t.inner.Put(ctx, key, snap)
}

// memCache is a one-use InventoryCache that keeps nothing.
type memCache struct{}

func (memCache) Get(context.Context, string) (*Snapshot, bool, error) { return nil, false, nil }
func (memCache) Put(context.Context, string, *Snapshot) error         { return nil }

// SBOM returns a CycloneDX SBOM of an image: every installed package of
// its inventory (snap), with the purls the other reports use, under the
// image (art) and its OS. It is deterministic: the serial number derives
// from the image digest and the packages, the timestamp is at.
func SBOM(art Artifact, snap *Snapshot, at time.Time) *cdx.BOM {
	r := &Report{Artifact: art, OS: osOf(snap.OS)}
	bom := cdx.NewBOM()
	bom.Version = 1
	imageRef := cmp.Or(imagePURL(r), "image:"+imageName(r))
	image := cdx.Component{BOMRef: imageRef, Type: cdx.ComponentTypeContainer, Name: imageName(r), Version: art.Digest,
		PackageURL: imagePURL(r)}
	bom.Metadata = &cdx.Metadata{
		Timestamp: at.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "drydock",
			Group: "drydock-project", Version: buildinfo.Get().Version}}},
		Component: &image,
	}
	components := []cdx.Component{}
	var refs, keys []string
	for _, p := range snap.Packages {
		pr := pkgRef{name: p.Name, arch: p.Arch, version: p.Version, ecosystem: p.Ecosystem, src: p.SourceName, srcVersion: p.SourceVersion}
		purl := packageURL(r, pr)
		keys = append(keys, purl)
		c := cdx.Component{BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: purl}
		var props []cdx.Property
		for _, kv := range [][2]string{{"drydock:SrcName", p.SourceName}, {"drydock:SrcVersion", p.SourceVersion},
			{"drydock:PkgType", p.Ecosystem}, {"drydock:DBPath", p.DBPath}} {
			if kv[1] != "" {
				props = append(props, cdx.Property{Name: kv[0], Value: kv[1]})
			}
		}
		if len(props) > 0 {
			c.Properties = &props
		}
		components = append(components, c)
		refs = append(refs, purl)
	}
	slices.SortFunc(components, func(a, b cdx.Component) int { return strings.Compare(a.BOMRef, b.BOMRef) })
	slices.Sort(refs)
	refs = slices.Compact(refs)
	var deps []cdx.Dependency
	if r.OS.ID != "" {
		osRef := "os:" + r.OS.ID + "-" + r.OS.Version
		components = append([]cdx.Component{{BOMRef: osRef, Type: cdx.ComponentTypeOS, Name: r.OS.ID, Version: r.OS.Version}}, components...)
		deps = append(deps, cdx.Dependency{Ref: imageRef, Dependencies: &[]string{osRef}})
		if len(refs) > 0 {
			deps = append(deps, cdx.Dependency{Ref: osRef, Dependencies: &refs})
		}
	}
	bom.Components = &components
	if len(deps) > 0 {
		bom.Dependencies = &deps
	}
	slices.Sort(keys)
	bom.SerialNumber = "urn:uuid:" + nameUUID(art.Digest+"\n"+strings.Join(keys, "\n"))
	return bom
}
