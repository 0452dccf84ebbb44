package imgref

import "strings"

// RouteKind is the kind of a distribution API endpoint.
type RouteKind string

// The endpoints under /v2/.
const (
	RoutePing      RouteKind = "ping"      // /v2/
	RouteCatalog   RouteKind = "catalog"   // /v2/_catalog
	RouteManifest  RouteKind = "manifest"  // /v2/NAME/manifests/REF
	RouteBlob      RouteKind = "blob"      // /v2/NAME/blobs/DIGEST
	RouteUpload    RouteKind = "upload"    // /v2/NAME/blobs/uploads/[ID]
	RouteTags      RouteKind = "tags"      // /v2/NAME/tags/list
	RouteReferrers RouteKind = "referrers" // /v2/NAME/referrers/DIGEST
)

// Route is a resolved /v2/ request path.
type Route struct {
	Kind RouteKind
	// Repository is the repository the request addresses ("" for ping and
	// catalog). It is not validated: see CheckRepository.
	Repository string
	// Ref is the tag or digest (manifests), digest (blobs, referrers) or
	// upload id ("" to start an upload).
	Ref string
}

// ParseRoute resolves a request path below /v2/ (the decoded URL path,
// as the server's handlers see it). Repository names contain slashes, so
// the endpoint is recognised from the end of the path. The registry
// dispatches on this and the authenticator and the live/ guard decide on
// it, so all three see the same repository for every request.
func ParseRoute(p string) (Route, bool) {
	rest, ok := strings.CutPrefix(p, "/v2")
	if !ok {
		return Route{}, false
	}
	if rest == "" || rest == "/" {
		return Route{Kind: RoutePing}, true
	}
	rest, ok = strings.CutPrefix(rest, "/")
	if !ok {
		return Route{}, false
	}
	if rest == "_catalog" {
		return Route{Kind: RouteCatalog}, true
	}
	parts := strings.Split(rest, "/")
	n := len(parts)
	name := func(k int) string { return strings.Join(parts[:k], "/") }
	switch {
	case n >= 4 && parts[n-3] == "blobs" && parts[n-2] == "uploads":
		return Route{Kind: RouteUpload, Repository: name(n - 3), Ref: parts[n-1]}, true
	case n >= 3 && parts[n-2] == "blobs" && parts[n-1] == "uploads":
		return Route{Kind: RouteUpload, Repository: name(n - 2)}, true
	case n >= 3 && parts[n-2] == "manifests":
		return Route{Kind: RouteManifest, Repository: name(n - 2), Ref: parts[n-1]}, true
	case n >= 3 && parts[n-2] == "blobs":
		return Route{Kind: RouteBlob, Repository: name(n - 2), Ref: parts[n-1]}, true
	case n >= 3 && parts[n-2] == "tags" && parts[n-1] == "list":
		return Route{Kind: RouteTags, Repository: name(n - 2)}, true
	case n >= 3 && parts[n-2] == "referrers":
		return Route{Kind: RouteReferrers, Repository: name(n - 2), Ref: parts[n-1]}, true
	}
	return Route{}, false
}
