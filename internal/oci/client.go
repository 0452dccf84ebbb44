package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// client speaks the OCI distribution API to one registry, with the
// authentication go-containerregistry's transport negotiates (basic or
// bearer token) for the given scopes. It is what Copy writes with and
// ListImages reads with; it assumes nothing beyond the distribution spec.
type client struct {
	reg    name.Registry
	base   string // scheme://host
	http   *http.Client
	logger interface {
		Debug(msg string, args ...any)
	}
}

func newClient(ctx context.Context, reg name.Registry, o *options, scopes ...string) (*client, error) {
	auth := o.auth
	if auth == nil {
		var err error
		auth, err = o.keychain.Resolve(reg)
		if err != nil {
			return nil, fmt.Errorf("resolving credentials for %s: %w", reg.RegistryStr(), err)
		}
	}
	rt := transport.NewUserAgent(o.transport, o.userAgent)
	tr, err := transport.NewWithContext(ctx, reg, auth, rt, scopes)
	if err != nil {
		return nil, classify(reg.RegistryStr(), err)
	}
	scheme := reg.Scheme()
	if o.scheme != "" {
		scheme = o.scheme
	}
	return &client{
		reg:    reg,
		base:   scheme + "://" + reg.RegistryStr(),
		http:   &http.Client{Transport: tr},
		logger: o.logger,
	}, nil
}

func repoScope(repo string, actions ...string) string {
	return fmt.Sprintf("repository:%s:%s", repo, strings.Join(actions, ","))
}

func (c *client) do(ctx context.Context, method, u string, body io.Reader, size int64, hdr map[string]string, want ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, classify(c.reg.RegistryStr(), err)
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(b))
	var te struct {
		Errors []struct {
			Code, Message string
		} `json:"errors"`
	}
	if json.Unmarshal(b, &te) == nil && len(te.Errors) > 0 {
		var parts []string
		for _, e := range te.Errors {
			parts = append(parts, strings.TrimSpace(e.Code+" "+e.Message))
		}
		msg = strings.Join(parts, "; ")
	}
	return nil, classify(c.reg.RegistryStr(), &statusError{method: method, url: u, code: resp.StatusCode, body: msg})
}

func (c *client) url(repo, kind, ref string) string {
	return fmt.Sprintf("%s/v2/%s/%s/%s", c.base, repo, kind, ref)
}

// exists HEADs a blob or manifest.
func (c *client) exists(ctx context.Context, repo, kind, ref string, accept string) (bool, error) {
	hdr := map[string]string{}
	if accept != "" {
		hdr["Accept"] = accept
	}
	resp, err := c.do(ctx, http.MethodHead, c.url(repo, kind, ref), nil, 0, hdr, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// mountBlob asks the registry to link blob d from repository from into
// repo (a cross-repository mount). It reports whether that happened; if
// not, it returns the upload session the registry opened instead.
func (c *client) mountBlob(ctx context.Context, repo, from string, d v1.Hash) (bool, *url.URL, error) {
	q := url.Values{"mount": {d.String()}, "from": {from}}
	resp, err := c.do(ctx, http.MethodPost, c.base+"/v2/"+repo+"/blobs/uploads/?"+q.Encode(), nil, 0, nil, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return false, nil, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusCreated {
		return true, nil, nil
	}
	loc, err := resp.Location()
	if err != nil {
		return false, nil, nil
	}
	return false, loc, nil
}

// uploadBlob uploads body (size bytes with digest d) monolithically:
// POST to open an upload session (unless loc is one), then PUT ...?digest=.
func (c *client) uploadBlob(ctx context.Context, repo string, d v1.Hash, size int64, body io.Reader, loc *url.URL) error {
	if loc == nil {
		var err error
		loc, err = c.startUpload(ctx, repo)
		if err != nil {
			return err
		}
	}
	return c.putUpload(ctx, loc, d, size, body)
}

func (c *client) startUpload(ctx context.Context, repo string) (*url.URL, error) {
	resp, err := c.do(ctx, http.MethodPost, c.base+"/v2/"+repo+"/blobs/uploads/", nil, 0, nil, http.StatusAccepted)
	if err != nil {
		return nil, fmt.Errorf("starting upload: %w", err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("starting upload: no Location in the registry's answer: %w", err)
	}
	return loc, nil
}

func (c *client) putUpload(ctx context.Context, loc *url.URL, d v1.Hash, size int64, body io.Reader) error {
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	hdr := map[string]string{"Content-Type": "application/octet-stream"}
	resp, err := c.do(ctx, http.MethodPut, loc.String(), body, size, hdr, http.StatusCreated)
	if err != nil {
		// Abandon the session; registries also expire them on their own.
		loc.RawQuery = ""
		if r, derr := c.do(context.WithoutCancel(ctx), http.MethodDelete, loc.String(), nil, 0, nil, http.StatusNoContent, http.StatusAccepted, http.StatusOK, http.StatusNotFound); derr == nil {
			r.Body.Close()
		}
		return err
	}
	resp.Body.Close()
	return nil
}

func (c *client) putManifest(ctx context.Context, repo, ref string, mt types.MediaType, raw []byte) error {
	hdr := map[string]string{"Content-Type": string(mt)}
	resp, err := c.do(ctx, http.MethodPut, c.url(repo, "manifests", ref), bytes.NewReader(raw), int64(len(raw)), hdr, http.StatusCreated, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// delete deletes a blob or manifest; it reports false if there was none.
func (c *client) delete(ctx context.Context, repo, kind, ref string) (bool, error) {
	resp, err := c.do(ctx, http.MethodDelete, c.url(repo, kind, ref), nil, 0, nil, http.StatusAccepted, http.StatusOK, http.StatusNoContent, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusNotFound, nil
}

var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex),
	string(types.OCIManifestSchema1),
	string(types.DockerManifestList),
	string(types.DockerManifestSchema2),
}, ", ")

// getManifest fetches a manifest by tag or digest.
func (c *client) getManifest(ctx context.Context, repo, ref string) ([]byte, types.MediaType, error) {
	resp, err := c.do(ctx, http.MethodGet, c.url(repo, "manifests", ref), nil, 0, map[string]string{"Accept": manifestAccept}, http.StatusOK)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	raw, err := readLimited(resp.Body, 8<<20, "manifest")
	if err != nil {
		return nil, "", err
	}
	mt := types.MediaType(strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0]))
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if json.Unmarshal(raw, &probe) == nil && probe.MediaType != "" {
		mt = probe.MediaType
	}
	return raw, mt, nil
}

// list follows a paginated list API (catalog or tags), collecting field.
func (c *client) list(ctx context.Context, path string, field string) ([]string, error) {
	var out []string
	next := c.base + path
	for next != "" {
		resp, err := c.do(ctx, http.MethodGet, next, nil, 0, nil, http.StatusOK)
		if err != nil {
			return nil, err
		}
		b, err := readLimited(resp.Body, 16<<20, path)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, fmt.Errorf("GET %s: parsing answer: %w", next, err)
		}
		var items []string
		if raw, ok := page[field]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &items); err != nil {
				return nil, fmt.Errorf("GET %s: parsing %s: %w", next, field, err)
			}
		}
		out = append(out, items...)
		next = ""
		if link := resp.Header.Get("Link"); link != "" && len(items) > 0 {
			next, err = nextLink(next, c.base, link)
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// nextLink parses an RFC 5988 Link header `<url>; rel="next"`.
func nextLink(_, base, link string) (string, error) {
	start, end := strings.Index(link, "<"), strings.Index(link, ">")
	if start < 0 || end < start {
		return "", fmt.Errorf("bad Link header %q", link)
	}
	u, err := url.Parse(link[start+1 : end])
	if err != nil {
		return "", fmt.Errorf("bad Link header %q: %w", link, err)
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	return b.ResolveReference(u).String(), nil
}
