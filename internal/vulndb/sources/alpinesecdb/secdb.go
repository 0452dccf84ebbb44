// Package alpinesecdb imports the Alpine secdb (secdb.alpinelinux.org
// vX.Y/main.json, vX.Y/community.json).
//
// Mapping: distroversion "v3.21" -> release "3.21" ("edge" stays "edge");
// packages[].pkg.name is the origin (source) package; each
// secfixes{version: [ids]} entry gives StatusFixed with FixedVersion =
// version for every CVE id in its strings. A string may hold several ids
// and free text ("CVE-2017-2616 (+ regression fix)", "CVE-2016-9932
// XSA-200"): every whitespace-separated token that starts with a CVE id
// counts ("CVE_2019-2426" is read as CVE-2019-2426, "CVE-2017-17434-1" as
// CVE-2017-17434); other ids (XSA-, GHSA-, ALPINE-...) and placeholders
// ("CVE-????-?????") are skipped, as Trivy does (trivy-db
// pkg/vulnsrc/alpine keeps only "CVE-" tokens).
//
// Version "0" is the secdb's marker for "this branch was never affected"
// (e.g. the vulnerable code is not built): StatusNotAffected. Trivy stores
// it as fixed version "0", which no installed version is below, so both
// report nothing. When one package lists a CVE under several versions the
// highest (apk ordering) wins, as trivy-db does for Debian's repeated
// advisories: the earlier fix was incomplete. A real version beats "0".
// The secdb has no severity (UNKNOWN) and no advisory ids.
package alpinesecdb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/drydock-project/drydock/internal/version"
	"github.com/drydock-project/drydock/internal/vulndb"
)

// Name is the Source name.
const Name = "alpine-secdb"

// DefaultBranches are the branches whose secdb files DefaultURLs lists.
var defaultBranches = []string{"v3.15", "v3.16", "v3.17", "v3.18", "v3.19", "v3.20", "v3.21", "edge"}

// maxFileSize bounds one secdb file; the largest real one is ~200 KB.
const maxFileSize = 64 << 20

// Source imports secdb files.
type Source struct {
	branches []string
}

// Option configures a Source.
type Option func(*Source) error

// WithBranches replaces the branches of DefaultURLs ("v3.21", "edge").
func WithBranches(branches ...string) Option {
	return func(s *Source) error {
		for _, b := range branches {
			if _, err := releaseKey(b); err != nil {
				return fmt.Errorf("alpinesecdb: branch %q: %w", b, err)
			}
		}
		s.branches = slices.Clone(branches)
		return nil
	}
}

// New returns a secdb Source.
func New(opts ...Option) (*Source, error) {
	s := &Source{branches: slices.Clone(defaultBranches)}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Name implements vulndb.Source.
func (s *Source) Name() string { return Name }

// DefaultURLs implements vulndb.Source: main and community of each branch.
func (s *Source) DefaultURLs() []string {
	var urls []string
	for _, b := range s.branches {
		urls = append(urls,
			"https://secdb.alpinelinux.org/"+b+"/main.json",
			"https://secdb.alpinelinux.org/"+b+"/community.json")
	}
	return urls
}

// document is a secdb file.
type document struct {
	DistroVersion string `json:"distroversion"`
	RepoName      string `json:"reponame"`
	Packages      []struct {
		Pkg struct {
			Name     string              `json:"name"`
			Secfixes map[string][]string `json:"secfixes"`
		} `json:"pkg"`
	} `json:"packages"`
}

var releaseRE = regexp.MustCompile(`^v(\d+\.\d+)$`)

func releaseKey(distroversion string) (string, error) {
	if distroversion == "edge" {
		return "edge", nil
	}
	m := releaseRE.FindStringSubmatch(distroversion)
	if m == nil {
		return "", fmt.Errorf("distroversion %q is not vX.Y or edge", distroversion)
	}
	return m[1], nil
}

// cveRE matches a CVE id at the start of a token (after CVE_ -> CVE-).
var cveRE = regexp.MustCompile(`^CVE-\d{4}-\d{4,}`)

// cveIDs extracts the CVE ids of one secfixes string.
func cveIDs(s string) []string {
	var ids []string
	for _, tok := range strings.Fields(s) {
		tok = strings.Replace(tok, "CVE_", "CVE-", 1)
		if m := cveRE.FindString(tok); m != "" {
			// "CVE-2017-17434-1" -> CVE-2017-17434; "CVE-2017-174340" is kept whole.
			ids = append(ids, m)
		}
	}
	return ids
}

// Import implements vulndb.Source.
func (s *Source) Import(ctx context.Context, url, file string, sink vulndb.Sink) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("alpinesecdb: opening %s: %w", file, err)
	}
	defer f.Close()
	return importReader(ctx, file, f, sink)
}

// importReader parses one secdb document from r; name is used in errors.
func importReader(ctx context.Context, name string, r io.Reader, sink vulndb.Sink) error {
	lr := &io.LimitedReader{R: r, N: maxFileSize + 1}
	var doc document
	dec := json.NewDecoder(lr)
	if err := dec.Decode(&doc); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("alpinesecdb: %s: larger than %d bytes", name, maxFileSize)
		}
		return fmt.Errorf("alpinesecdb: %s: decoding: %w", name, err)
	}
	release, err := releaseKey(doc.DistroVersion)
	if err != nil {
		return fmt.Errorf("alpinesecdb: %s: %w", name, err)
	}
	type key struct{ pkg, id string }
	fixed := map[key]string{}
	var keys []key
	cmp := version.APK{}
	for i, p := range doc.Packages {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p.Pkg.Name == "" {
			return fmt.Errorf("alpinesecdb: %s: packages[%d] has no name", name, i)
		}
		for ver, list := range p.Pkg.Secfixes {
			ver = strings.TrimSpace(ver)
			if ver == "" {
				return fmt.Errorf("alpinesecdb: %s: package %s: empty secfixes version", name, p.Pkg.Name)
			}
			for _, s := range list {
				for _, id := range cveIDs(s) {
					k := key{p.Pkg.Name, id}
					prev, ok := fixed[k]
					if !ok {
						keys = append(keys, k)
						fixed[k] = ver
						continue
					}
					fixed[k] = higher(cmp, prev, ver)
				}
			}
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if c := strings.Compare(a.pkg, b.pkg); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	for _, k := range keys {
		adv := vulndb.Advisory{
			ID: k.id, Distro: vulndb.Alpine, Release: release, Package: k.pkg,
			Severity: vulndb.SeverityUnknown, Source: Name,
		}
		if v := fixed[k]; v == "0" {
			adv.Status = vulndb.StatusNotAffected
		} else {
			adv.Status, adv.FixedVersion = vulndb.StatusFixed, v
		}
		if err := sink.Advisory(adv); err != nil {
			return fmt.Errorf("alpinesecdb: %s: %s %s: %w", name, k.pkg, k.id, err)
		}
	}
	return nil
}

// higher returns the higher of two secfixes versions: a real version beats
// "0"; unorderable versions compare as strings (deterministic).
func higher(cmp version.Comparer, a, b string) string {
	switch {
	case a == "0":
		return b
	case b == "0":
		return a
	}
	c, err := cmp.Compare(a, b)
	if err != nil {
		c = strings.Compare(a, b)
	}
	if c >= 0 {
		return a
	}
	return b
}
