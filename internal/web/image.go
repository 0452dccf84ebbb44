package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/drydock-project/drydock/internal/api"
)

// parts are the templates a page includes besides its own.
var parts = map[string][]string{"image": {"templates/image_detail.html"}}

func init() { funcs["size"] = size }

// packagesPerPage is the image page's page of installed packages.
const packagesPerPage = 50

// imageMore is what the image page shows besides the verdict and the
// findings: each from its own API route, so one that fails (a digest no
// longer stored, an inventory this server does not hold) leaves a note in
// its section, not an error page.
type imageMore struct {
	Detail     *api.ImageDetail
	DetailNote string
	Packages   *api.PackagesResponse
	PkgNote    string
	PkgName    string
	PkgPrev    string
	PkgNext    string
	Lineage    *api.LineageResponse
	LinNote    string
	Referrers  *api.ReferrersResponse
	RefNote    string
}

// note is what a section shows for an API error.
func note(err error) string {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status < 500 {
		return ae.Message
	}
	return "This could not be read; the server's log says why."
}

// imageMore reads the image routes for the page of digest dg; q is the
// page's query (platform, pkg, pkgpage).
func (u *UI) imageMore(r *http.Request, dg string, q url.Values) imageMore {
	var m imageMore
	base := "/api/v1/images/" + dg
	m.Detail = new(api.ImageDetail)
	if err := u.call(r, http.MethodGet, base, nil, nil, m.Detail); err != nil {
		m.Detail, m.DetailNote = nil, note(err)
	}
	m.PkgName = strings.TrimSpace(q.Get("pkg"))
	pq := url.Values{"limit": {strconv.Itoa(packagesPerPage)}}
	for k, v := range map[string]string{"platform": q.Get("platform"), "name": m.PkgName, "page": q.Get("pkgpage")} {
		if v != "" {
			pq.Set(k, v)
		}
	}
	m.Packages = new(api.PackagesResponse)
	if err := u.call(r, http.MethodGet, base+"/packages", pq, nil, m.Packages); err != nil {
		m.Packages, m.PkgNote = nil, note(err)
	} else {
		link := func(page int) string {
			lq := r.URL.Query()
			lq.Set("pkgpage", strconv.Itoa(page))
			return "/ui/image?" + lq.Encode() + "#h-packages"
		}
		if m.Packages.Page > 1 {
			m.PkgPrev = link(m.Packages.Page - 1)
		}
		if m.Packages.Page*m.Packages.Limit < m.Packages.Total {
			m.PkgNext = link(m.Packages.Page + 1)
		}
	}
	m.Lineage = new(api.LineageResponse)
	if err := u.call(r, http.MethodGet, base+"/lineage", nil, nil, m.Lineage); err != nil {
		m.Lineage, m.LinNote = nil, note(err)
	}
	m.Referrers = new(api.ReferrersResponse)
	if err := u.call(r, http.MethodGet, base+"/referrers", nil, nil, m.Referrers); err != nil {
		m.Referrers, m.RefNote = nil, note(err)
	}
	return m
}

// size is a byte count for people: 1.5 MiB.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("KMGTP"[exp]) + "iB"
}

// artifact shows a manifest as stored: where the image page's referrers
// link.
func (u *UI) artifact(w http.ResponseWriter, r *http.Request) {
	p := pageFor(r, "Artifact", "images")
	q := r.URL.Query()
	var m api.ManifestResponse
	if err := u.call(r, http.MethodGet, "/api/v1/manifests/"+url.PathEscape(q.Get("digest")), url.Values{"repository": {q.Get("repository")}}, nil, &m); err != nil {
		u.fail(w, r, p, err)
		return
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, m.Manifest, "", "  "); err != nil {
		pretty.Reset()
		pretty.Write(m.Manifest)
	}
	p.Title = m.Repository + "@" + short(m.Digest)
	u.render(w, r, http.StatusOK, "artifact", p, map[string]any{"M": m, "JSON": pretty.String()})
}
