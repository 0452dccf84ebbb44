package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/drydock-project/drydock/internal/imgref"
)

// maxRepoDepth bounds the recursion over nested repository names.
const maxRepoDepth = 64

// walkRepos calls fn for every repository directory (one holding a
// "_"-prefixed bookkeeping directory), with the base names of its children.
func (r *Registry) walkRepos(ctx context.Context, fn func(name string, children []string) error) error {
	var walk func(name string, depth int) error
	walk = func(name string, depth int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if depth > maxRepoDepth {
			return nil
		}
		dir := reposRoot()
		if name != "" {
			dir = repoPath(name)
		}
		children, err := r.list(ctx, dir)
		if err != nil {
			return err
		}
		sort.Strings(children)
		if name != "" && slices.ContainsFunc(children, func(c string) bool { return strings.HasPrefix(c, "_") }) {
			if err := fn(name, children); err != nil {
				return err
			}
		}
		for _, c := range children {
			if !imgref.ValidComponent(c) {
				continue
			}
			if err := walk(path.Join(name, c), depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk("", 0)
}

// hasManifests reports whether the repository stores at least one manifest.
func (r *Registry) hasManifests(ctx context.Context, name string) (bool, error) {
	for _, alg := range []string{"sha256", "sha512"} {
		revs, err := r.list(ctx, path.Join(revisionsPath(name), alg))
		if err != nil {
			return false, err
		}
		if len(revs) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// Repositories lists, sorted, the repositories holding at least one manifest.
func (r *Registry) Repositories(ctx context.Context) ([]string, error) {
	var repos []string
	err := r.walkRepos(ctx, func(name string, children []string) error {
		if !slices.Contains(children, "_manifests") {
			return nil
		}
		ok, err := r.hasManifests(ctx, name)
		if ok {
			repos = append(repos, name)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	sort.Strings(repos)
	return repos, nil
}

// Tags lists the tags of repo, sorted lexically. An unknown repository is
// ErrNotFound.
func (r *Registry) Tags(ctx context.Context, repo string) ([]string, error) {
	if !imgref.ValidRepository(repo) {
		return nil, fmt.Errorf("listing tags of %q: invalid repository name: %w", repo, ErrNotFound)
	}
	names, err := r.list(ctx, tagsPath(repo))
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", repo, err)
	}
	if len(names) == 0 {
		ok, err := r.exists(ctx, repoPath(repo))
		if err != nil {
			return nil, fmt.Errorf("listing tags of %s: %w", repo, err)
		}
		if !ok {
			return nil, fmt.Errorf("listing tags of %s: %w", repo, ErrNotFound)
		}
	}
	tags := make([]string, 0, len(names))
	for _, t := range names {
		if !imgref.ValidTag(t) {
			continue
		}
		// A tag exists once its link does: a directory without one is a
		// tag write cut off between creating the directory and moving the
		// link into it (a crash), and must not be listed.
		if _, err := r.readLink(ctx, tagLinkPath(repo, t)); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, fmt.Errorf("listing tags of %s: %w", repo, err)
		}
		tags = append(tags, t)
	}
	sort.Strings(tags)
	return tags, nil
}

// Resolve resolves a tag or digest in repo to the stored manifest's
// descriptor (media type, digest, size). Unknown references are ErrNotFound.
func (r *Registry) Resolve(ctx context.Context, repo, ref string) (ocispec.Descriptor, error) {
	if !imgref.ValidRepository(repo) {
		return ocispec.Descriptor{}, fmt.Errorf("resolving %s:%s: invalid repository name: %w", repo, ref, ErrNotFound)
	}
	desc, err := r.resolveManifest(ctx, repo, ref)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			err = fmt.Errorf("%v: %w", ae, ErrNotFound)
		}
		return ocispec.Descriptor{}, fmt.Errorf("resolving %s:%s: %w", repo, ref, err)
	}
	return desc, nil
}

// paginate applies the n and last parameters to a sorted list. It returns
// the page and whether entries remain after it.
func paginate(q url.Values, all []string) (page []string, n int, more bool, err error) {
	if last := q.Get("last"); last != "" {
		i := sort.SearchStrings(all, last)
		if i < len(all) && all[i] == last {
			i++
		}
		all = all[i:]
	}
	n = -1
	if ns := q.Get("n"); ns != "" {
		n, err = strconv.Atoi(ns)
		if err != nil || n < 0 {
			return nil, 0, false, newAPIError(http.StatusBadRequest, codePaginationInvalid, "invalid number of results requested", map[string]string{"n": ns})
		}
		n = min(n, maxListEntries)
	}
	if n >= 0 && len(all) > n {
		return all[:n], n, true, nil
	}
	return all, n, false, nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

func setNextLink(w http.ResponseWriter, base string, n int, last string) {
	q := url.Values{}
	q.Set("n", strconv.Itoa(n))
	q.Set("last", last)
	w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, base, q.Encode()))
}

func (r *Registry) serveTags(w http.ResponseWriter, req *http.Request, name string) error {
	tags, err := r.Tags(req.Context(), name)
	if errors.Is(err, ErrNotFound) {
		return errNameUnknown(name)
	}
	if err != nil {
		return err
	}
	page, n, more, err := paginate(req.URL.Query(), tags)
	if err != nil {
		return err
	}
	if more && len(page) > 0 {
		setNextLink(w, "/v2/"+name+"/tags/list", n, page[len(page)-1])
	}
	return writeJSON(w, struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{Name: name, Tags: page})
}

func (r *Registry) serveCatalog(w http.ResponseWriter, req *http.Request) error {
	repos, err := r.Repositories(req.Context())
	if err != nil {
		return err
	}
	page, n, more, err := paginate(req.URL.Query(), repos)
	if err != nil {
		return err
	}
	if page == nil {
		page = []string{}
	}
	if more && len(page) > 0 {
		setNextLink(w, "/v2/_catalog", n, page[len(page)-1])
	}
	return writeJSON(w, struct {
		Repositories []string `json:"repositories"`
	}{Repositories: page})
}
