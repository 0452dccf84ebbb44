package archive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"golang.org/x/sync/errgroup"

	"github.com/drydock-project/drydock/internal/osinfo"
	"github.com/drydock-project/drydock/internal/patch/xzdec"
)

// Repo is the package repositories an image's apt would update from: its
// sources (completed with the release's updates and security suites), the
// keys each must be signed with, and, after Update, their verified indexes.
// A Repo is not safe for concurrent use.
type Repo struct {
	o       *options
	arch    string
	sources []Source
	keys    []openpgp.EntityList // per source
	keyDesc []string             // per source: where its keys came from
	store   *store
	// After Update:
	releases map[string]*Release // by URI + " " + Suite
	views    []*indexView        // every index, in the sources' order
}

// indexView is one source's index as a Repo sees it: the shared parsed
// index, the source it stands for, and the entries this Repo decoded from
// it (its own copies: what one Repo's caller does to them, no other Repo
// sees).
type indexView struct {
	idx        *packageIndex
	suite, uri string
	automatic  bool // apt installs from it by default (not NotAutomatic)
	decoded    map[uint32]*IndexPackage
}

// entry returns package i of the view, decoded once per Repo.
func (v *indexView) entry(i uint32) *IndexPackage {
	if p, ok := v.decoded[i]; ok {
		return p
	}
	p := v.idx.At(int(i))
	p.Suite, p.URI = v.suite, v.uri
	v.decoded[i] = &p
	return &p
}

// Open reads the apt configuration of the root filesystem fsys (sources
// and keyrings, see ReadSources and ReadTrustedKeys) of an image of OS osi
// and Debian architecture arch ("amd64", "arm64"), and completes its suites
// (see CompleteSuites). Every source must have a trusted key (see
// WithHostKeyring and WithInsecureSkipVerify). Nothing is fetched yet.
func Open(ctx context.Context, fsys fs.FS, osi osinfo.OS, arch string, opts ...Option) (*Repo, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	if arch == "" || strings.ContainsAny(arch, "/ ") {
		return nil, fmt.Errorf("apt: invalid architecture %q", arch)
	}
	if osi.Family != osinfo.FamilyDebian {
		return nil, fmt.Errorf("apt: %s is not a Debian-family OS", osi.ID)
	}
	srcs, err := ReadSources(ctx, fsys)
	if err != nil {
		return nil, err
	}
	srcs = slices.DeleteFunc(srcs, func(s Source) bool { return len(s.Arch) > 0 && !slices.Contains(s.Arch, arch) })
	srcs, err = CompleteSuites(srcs, osi.VersionCodename, Archives{
		Mirror: o.mirror, SecurityMirror: o.securityMirror, SameArchiveSecurity: osi.ID == "ubuntu",
	})
	if err != nil {
		return nil, err
	}
	srcs = dedupSources(srcs)
	trusted, err := ReadTrustedKeys(ctx, fsys)
	if err != nil {
		return nil, err
	}
	var host openpgp.EntityList
	if o.hostKeyring != "" {
		if host, err = readHostKeyring(o.hostKeyring); err != nil {
			return nil, err
		}
	}
	st, err := openStore(o.cacheDir, o.cacheSize)
	if err != nil {
		return nil, err
	}
	r := &Repo{o: o, arch: arch, sources: srcs, store: st}
	keyrings := newImageKeyrings(fsys)
	for _, s := range srcs {
		keys, desc, err := sourceKeys(keyrings, s, trusted, host, o.hostKeyring)
		if err != nil && !o.insecure {
			return nil, err
		}
		if err != nil {
			o.log.Error("apt: INSECURE: no trusted key for source, its signature will not be checked", "source", s.String(), "error", err)
		}
		if strings.HasPrefix(desc, "host keyring") {
			o.log.Warn("apt: verifying source with the host's keyring, the image has none for it", "source", s.String(), "keyring", o.hostKeyring)
		}
		r.keys = append(r.keys, keys)
		r.keyDesc = append(r.keyDesc, desc)
	}
	return r, nil
}

// dedupSources merges sources with the same URI and suite (their
// components joined), keeping the first's keys.
func dedupSources(srcs []Source) []Source {
	var out []Source
	for _, s := range srcs {
		i := slices.IndexFunc(out, func(t Source) bool { return t.URI == s.URI && t.Suite == s.Suite })
		if i < 0 {
			out = append(out, s)
			continue
		}
		for _, c := range s.Components {
			if !slices.Contains(out[i].Components, c) {
				out[i].Components = append(out[i].Components, c)
			}
		}
	}
	return out
}

// Close lets the cache evict what the Repo used (indexes, .debs): the
// paths FetchDeb returned are valid until then.
func (r *Repo) Close() error {
	r.store.release()
	return nil
}

// Sources returns the sources Open settled on, in order.
func (r *Repo) Sources() []Source { return slices.Clone(r.sources) }

// Arch is the image's architecture.
func (r *Repo) Arch() string { return r.arch }

// Release returns the verified Release file of a source after Update.
func (r *Repo) Release(s Source) (*Release, bool) {
	rel, ok := r.releases[s.URI+" "+s.Suite]
	return rel, ok
}

// Update fetches and verifies every source's Release file and its Packages
// indexes for the components it names and the image's architecture (and
// "all" when the Release lists it and keeps arch-all packages apart). A
// failure of any source is an error and leaves the Repo as it was: a partial
// view would miss updates. A component the suite lacks is skipped with a
// warning, as apt does; flat repositories are skipped (not supported yet).
func (r *Repo) Update(ctx context.Context) error {
	// Sources are fetched at once (a few at a time: the round trips to
	// the mirror add up), then merged in their order, which decides
	// between equal versions.
	type fetched struct {
		rel   *Release
		lists []*packageIndex
	}
	got := make([]fetched, len(r.sources))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, s := range r.sources {
		if len(s.Components) == 0 {
			// A flat repository ("deb URI path/"): not supported yet.
			r.o.log.Warn("apt: skipping flat repository (not supported)", "source", s.String(), "origin", s.Origin)
			continue
		}
		g.Go(func() error {
			rel, err := r.fetchRelease(gctx, s, r.keys[i])
			if err != nil {
				return err
			}
			got[i].rel = rel
			for _, comp := range s.Components {
				archs := []string{r.arch}
				// As apt: binary-all only when the Release lists "all" as
				// an architecture, and only when those packages are not in
				// the binary-ARCH indexes already.
				if slices.Contains(rel.Architectures, "all") && !rel.ArchAllInArchIndexes {
					archs = append(archs, "all")
				}
				for _, a := range archs {
					list, err := r.fetchIndex(gctx, s, rel, comp, a)
					if err != nil {
						return err
					}
					got[i].lists = append(got[i].lists, list)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	releases := map[string]*Release{}
	var views []*indexView
	for i, s := range r.sources {
		if got[i].rel == nil {
			continue
		}
		releases[s.URI+" "+s.Suite] = got[i].rel
		for _, idx := range got[i].lists {
			views = append(views, &indexView{idx: idx, suite: s.Suite, uri: s.URI,
				automatic: !got[i].rel.NotAutomatic, decoded: map[uint32]*IndexPackage{}})
		}
	}
	r.releases, r.views = releases, views
	return nil
}

// distsURL is the URL of a file under dists/SUITE; a suite ending in "/"
// is a flat repository's exact path.
func distsURL(s Source, name string) string {
	if strings.HasSuffix(s.Suite, "/") {
		return s.URI + "/" + s.Suite + name
	}
	return s.URI + "/dists/" + s.Suite + "/" + name
}

// fetchRelease fetches InRelease, else Release and Release.gpg, verifies
// the signature with keys and the Valid-Until date, and parses it.
func (r *Repo) fetchRelease(ctx context.Context, s Source, keys openpgp.EntityList) (*Release, error) {
	now := r.o.clock.Now()
	url := distsURL(s, "InRelease")
	data, err := r.getSmall(ctx, url, maxReleaseSize)
	var he *HTTPError
	var plain []byte
	var signer string
	switch {
	case err == nil:
		plain, signer, err = VerifyInRelease(data, keys, now)
		if err != nil {
			if !r.o.insecure {
				return nil, &ReleaseError{URL: url, Err: err}
			}
			r.o.log.Error("apt: INSECURE: accepting a Release file whose signature does not verify", "url", url, "error", err)
			plain = data
			if b, err := decodeClearsign(data); err == nil {
				plain = b
			}
		}
	case errors.As(err, &he) && he.StatusCode == http.StatusNotFound:
		url = distsURL(s, "Release")
		if plain, err = r.getSmall(ctx, url, maxReleaseSize); err != nil {
			return nil, err
		}
		sig, err := r.getSmall(ctx, url+".gpg", 1<<20)
		if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
			sig, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		if signer, err = VerifyDetached(plain, sig, keys, now); err != nil {
			if !r.o.insecure {
				return nil, &ReleaseError{URL: url, Err: err}
			}
			r.o.log.Error("apt: INSECURE: accepting a Release file whose signature does not verify", "url", url, "error", err)
		}
	default:
		return nil, err
	}
	rel, err := ParseRelease(plain)
	if err != nil {
		return nil, &ReleaseError{URL: url, Err: err}
	}
	rel.Signer = signer
	// A validly signed Release of another suite must not stand in for
	// this one (a replay that would hide updates).
	if rel.Suite != s.Suite && rel.Codename != s.Suite {
		return nil, &ReleaseError{URL: url, Err: fmt.Errorf("%w: Suite %q, Codename %q, want %q", ErrWrongSuite, rel.Suite, rel.Codename, s.Suite)}
	}
	if err := checkValid(rel, now); err != nil {
		if !r.o.insecure {
			return nil, &ReleaseError{URL: url, Err: err}
		}
		r.o.log.Error("apt: INSECURE: accepting an expired Release file", "url", url, "error", err)
	}
	return rel, nil
}

// fetchIndex fetches one Packages index listed in rel (gz, else xz, else
// plain: gzip decodes about five times faster than xz in Go, 0.24 s
// against 1.2 s of CPU for bookworm's 50 MB main index, for 3 MB more to
// download), verifies its size and SHA256 before reading it, decompresses it
// with bounds, checks the uncompressed hash when rel lists it, and parses
// it. Indexes are cached under the cache dir by hash.
func (r *Repo) fetchIndex(ctx context.Context, s Source, rel *Release, comp, arch string) (*packageIndex, error) {
	dir := comp + "/binary-" + arch + "/"
	var pick FileHash
	for _, n := range []string{"Packages.gz", "Packages.xz", "Packages"} {
		if fh, ok := rel.SHA256[dir+n]; ok {
			pick = fh
			break
		}
	}
	if pick.Path == "" {
		// apt warns and goes on when a suite lacks a component the
		// sources name (e.g. non-free-firmware in an older suite).
		r.o.log.Warn("apt: suite has no index for component", "suite", s.URI+" "+s.Suite, "component", comp, "arch", arch)
		return loadIndex(encodeIndex(nil))
	}
	if pick.Size > maxIndexCompressed {
		return nil, fmt.Errorf("index %s: %d bytes, more than the limit of %d", distsURL(s, pick.Path), pick.Size, maxIndexCompressed)
	}
	urls := []string{distsURL(s, pick.Path)}
	if rel.AcquireByHash {
		// by-hash names the content, so a mirror update between InRelease
		// and the index fetch cannot give a mismatch.
		urls = append([]string{distsURL(s, dir+"by-hash/SHA256/"+pick.SHA256)}, urls...)
	}
	name := distsURL(s, pick.Path)
	plain, hasPlain := rel.SHA256[dir+"Packages"]
	if hasPlain && plain.Size > maxIndexUncompressed {
		return nil, fmt.Errorf("index %s: %d bytes decompressed, more than the limit of %d", name, plain.Size, int64(maxIndexUncompressed))
	}
	// Parsed indexes are cached by the hash the signed Release gives the
	// index (the plain file's when listed): the same hash, the same
	// content, so a cached parse is never stale.
	sum := pick.SHA256
	if hasPlain {
		sum = plain.SHA256
	}
	if idx := r.store.parsed(sum); idx != nil {
		return idx, nil
	}
	// Room for the parsed index, before it is built: what its builder
	// holds, the blob (blobHint: 45% of the plain index) and the records
	// and directories (15% more for bookworm's main); a compressed index
	// is a fifth to a quarter of the plain one.
	estimate := 3 * pick.Size
	if hasPlain {
		estimate = plain.Size * 3 / 5
	}
	release := parsedIndexes.reserve(estimate)
	defer release()
	var file string
	var err error
	var built *indexBuilder // parsed while fetched, when it was
	switch {
	case hasPlain && plain.Path != pick.Path:
		// Cached decompressed: reading it again costs far less than
		// decompressing.
		file, err = r.store.file("plain-"+plain.SHA256, "Packages", matches(plain), func(dst string) error {
			b, err := r.streamIndex(ctx, urls, dst, pick, plain, name)
			built = b
			return err
		})
	default:
		file, err = r.store.file("index-"+pick.SHA256, "Packages"+path.Ext(pick.Path), matches(pick), func(dst string) error {
			return r.fetchVerified(ctx, urls, dst, pick)
		})
	}
	if err != nil {
		return nil, err
	}
	if built == nil {
		hint := 0
		if hasPlain {
			hint = blobHint(plain.Size)
		}
		if built, err = parseIndexFile(file, name, r.o.xz, hint); err != nil {
			return nil, err
		}
	}
	release() // before the index takes its place
	idx, err := r.store.putParsed(sum, built)
	if err != nil && idx != nil {
		r.o.log.Warn("apt: cannot cache a parsed index", "index", name, "error", err)
		err = nil
	}
	return idx, err
}

// matches is a store check: the file has the wanted size and SHA256.
func matches(want FileHash) func(string) (bool, error) {
	return func(p string) (bool, error) { return fileMatches(p, want) }
}

// parseIndexFile parses a verified cached index into a builder whose
// blob starts with room for blobHint bytes; name (its URL) is used in
// errors.
func parseIndexFile(file, name string, xzd xzdec.Decoder, blobHint int) (*indexBuilder, error) {
	rd, closeFn, err := openIndex(file, xzd)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	b := newIndexBuilder(blobHint)
	if err := parsePackages(rd, name, b.add); err != nil {
		return nil, err
	}
	return b, nil
}

// Index returns, after Update, the index entries of the suites apt would
// install from by default (not NotAutomatic ones: backports,
// experimental), in the sources' order (which decides between equal
// versions): what a resolver chooses among. It decodes every entry: a
// resolver wants Named and Providing, which decode only what it looks
// at. The entries are this Repo's: callers must not change them.
func (r *Repo) Index() []*IndexPackage {
	var index []*IndexPackage
	for _, v := range r.views {
		if !v.automatic {
			continue
		}
		for i := range v.idx.Len() {
			index = append(index, v.entry(uint32(i)))
		}
	}
	return index
}

// entries returns the entries called name across the indexes (only those
// apt installs from by default when automatic is set), in the sources'
// order.
func (r *Repo) entries(name string, automatic bool) []*IndexPackage {
	var out []*IndexPackage
	for _, v := range r.views {
		if automatic && !v.automatic {
			continue
		}
		for _, i := range v.idx.Named(name) {
			out = append(out, v.entry(i))
		}
	}
	return out
}

// Named returns, after Update, the entries of Index called name, in the
// same order, decoding only those. The entries are this Repo's: callers
// must not change them.
func (r *Repo) Named(name string) []*IndexPackage { return r.entries(name, true) }

// Providing returns, after Update, the entries of Index whose Provides
// field names virtual, in the same order: a superset (the field's other
// syntax is not checked; a resolver parses the entries it is given).
func (r *Repo) Providing(virtual string) []*IndexPackage {
	var out []*IndexPackage
	for _, v := range r.views {
		if !v.automatic {
			continue
		}
		for _, i := range v.idx.Providing(virtual) {
			out = append(out, v.entry(i))
		}
	}
	return out
}
