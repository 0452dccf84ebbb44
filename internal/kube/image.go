package kube

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/drydock-project/drydock/internal/imgref"
)

// ImageRef is a container image reference as a container runtime reads it:
// the registry host it pulls from, the repository path, and the tag or
// digest. A reference with both a tag and a digest is pulled by its digest
// (the tag is kept for display).
type ImageRef struct {
	// Host is the registry host, lowercased, with its port when one is
	// written ("drydock.example.com", "10.0.0.5:5000"); "docker.io" when
	// the reference names none.
	Host string
	// Repository is the path in that registry, e.g. "live/nginx".
	Repository string
	Tag        string
	Digest     string
}

// Namespace returns the repository's first path component ("live").
func (r ImageRef) Namespace() string {
	ns, _, _ := strings.Cut(r.Repository, "/")
	return ns
}

// Reference is the tag or digest the runtime pulls: the digest when there
// is one.
func (r ImageRef) Reference() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// String formats the normalised reference.
func (r ImageRef) String() string {
	s := r.Host + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Pinned returns the reference of the same repository by digest d.
func (r ImageRef) Pinned(d string) string { return r.Host + "/" + r.Repository + "@" + d }

// The host part of the reference grammar of the distribution project
// (docker, containerd, CRI-O and the kubelet all read image names with it);
// path components, tags and digests are imgref's grammar. Hosts are matched
// case-insensitively.
var (
	domainLabelRE = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$`)
	portRE        = regexp.MustCompile(`^[0-9]{1,5}$`)
)

// maxImageLength bounds an image reference; the grammar allows 255
// characters of name, a 128-character tag and a sha512 digest.
const maxImageLength = 512

// DockerHub is the host of references that name none.
const DockerHub = "docker.io"

// ErrInvalidImage is wrapped by ParseImage's errors.
var ErrInvalidImage = errors.New("invalid image reference")

// ParseImage normalises an image reference the way container runtimes do:
// a first path component that looks like a host (has a "." or ":", or is
// "localhost") is the registry, else the registry is docker.io (and a
// one-component name is under library/); no tag and no digest means
// "latest". Anything outside the grammar is an error: an image the
// runtime could not pull must never be matched against a namespace.
//
// This is the one place drydock's Kubernetes code normalises an image.
func ParseImage(s string) (ImageRef, error) {
	bad := func(why string) (ImageRef, error) {
		return ImageRef{}, fmt.Errorf("%w %q: %s", ErrInvalidImage, truncate(s, 80), why)
	}
	if s == "" {
		return bad("empty")
	}
	if len(s) > maxImageLength {
		return bad(fmt.Sprintf("longer than %d characters", maxImageLength))
	}
	var ref ImageRef
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		d := rest[i+1:]
		if err := validDigest(d); err != nil {
			return bad(err.Error())
		}
		ref.Digest, rest = d, rest[:i]
	}
	// A tag follows the last ":" after the last "/" (a ":" before it is
	// a host's port).
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		t := rest[i+1:]
		if !imgref.ValidTag(t) {
			return bad(fmt.Sprintf("tag %q is not valid", truncate(t, 40)))
		}
		ref.Tag, rest = t, rest[:i]
	}
	host, path := "", rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		first := rest[:i]
		if strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first {
			host, path = first, rest[i+1:]
		}
	}
	if host == "" {
		host = DockerHub
	} else {
		h, err := normalizeHost(host)
		if err != nil {
			return bad(err.Error())
		}
		host = h
	}
	if host == "index.docker.io" { // docker's legacy name of docker.io
		host = DockerHub
	}
	if host == DockerHub && !strings.Contains(path, "/") {
		path = "library/" + path
	}
	if len(path) > 255 {
		return bad("repository path longer than 255 characters")
	}
	for c := range strings.SplitSeq(path, "/") {
		if !imgref.ValidComponent(c) {
			return bad(fmt.Sprintf("path component %q is not valid (lowercase letters, digits and single separators)", truncate(c, 40)))
		}
	}
	ref.Host, ref.Repository = host, path
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = "latest"
	}
	return ref, nil
}

// normalizeHost checks a registry host[:port] and lowercases it. An IPv6
// address is written in brackets.
func normalizeHost(h string) (string, error) {
	name, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", fmt.Errorf("host %q: unclosed [", h)
		}
		name, port = h[:end+1], h[end+1:]
		addr, err := netip.ParseAddr(name[1 : len(name)-1])
		if err != nil || !addr.Is6() {
			return "", fmt.Errorf("host %q: not an IPv6 address", h)
		}
		name = "[" + addr.String() + "]"
		if port != "" && !strings.HasPrefix(port, ":") {
			return "", fmt.Errorf("host %q: junk after ]", h)
		}
		port = strings.TrimPrefix(port, ":")
		if strings.HasPrefix(h[end+1:], ":") && port == "" {
			return "", fmt.Errorf("host %q: empty port", h)
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 {
		name, port = h[:i], h[i+1:]
		if port == "" {
			return "", fmt.Errorf("host %q: empty port", h)
		}
	}
	if port != "" && !portRE.MatchString(port) {
		return "", fmt.Errorf("host %q: port %q is not a number", h, port)
	}
	if !strings.HasPrefix(name, "[") {
		for l := range strings.SplitSeq(name, ".") {
			if !domainLabelRE.MatchString(l) {
				return "", fmt.Errorf("host %q is not a host name or address", h)
			}
		}
	}
	name = strings.ToLower(name)
	if port != "" {
		return name + ":" + port, nil
	}
	return name, nil
}

// NormalizeHost normalises a registry host as written in configuration
// (kube.registry) the way ParseImage normalises the host of an image.
func NormalizeHost(h string) (string, error) {
	h = strings.TrimSpace(h)
	if h == "" || strings.Contains(h, "/") {
		return "", fmt.Errorf("registry host %q: want HOST or HOST:PORT, without scheme or path", h)
	}
	return normalizeHost(h)
}

func validDigest(d string) error {
	if _, err := imgref.ParseDigest(d); err != nil {
		return fmt.Errorf("digest %q is not sha256:<64 hex> or sha512:<128 hex>", truncate(d, 80))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
