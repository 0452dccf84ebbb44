package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/drydock-project/drydock/internal/api"
)

// The CVE page (/ui/cves/{id}) and the package page (/ui/packages/{name}):
// where a vulnerability or a package is, from the findings index, a page
// of images at a time; /ui/cves?id=X (the dashboard's form) sends the
// browser to the CVE's own, bookmarkable, URL.

type whereData struct {
	W          api.WhereResponse
	Namespaces string
	Prev, Next string
}

// findCVE: GET /ui/cves?id=X or ?package=P, the dashboard's search form.
func (u *UI) findCVE(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if p := strings.TrimSpace(q.Get("package")); p != "" {
		http.Redirect(w, r, "/ui/packages/"+url.PathEscape(p), http.StatusSeeOther)
		return
	}
	id := strings.TrimSpace(q.Get("id"))
	if id == "" {
		u.fail(w, r, pageFor(r, "CVE", "dashboard"), &apiError{Status: http.StatusBadRequest, Message: "id: empty: want a vulnerability id, e.g. CVE-2024-6387"})
		return
	}
	http.Redirect(w, r, "/ui/cves/"+url.PathEscape(id), http.StatusSeeOther)
}

func (u *UI) cve(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	u.where(w, r, "CVE "+id, "/api/v1/cves/"+url.PathEscape(id))
}

func (u *UI) pkg(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	u.where(w, r, "Package "+name, "/api/v1/packages/"+url.PathEscape(name))
}

func (u *UI) where(w http.ResponseWriter, r *http.Request, title, apiPath string) {
	p := pageFor(r, title, "images")
	p.Stale = u.dbWarning(r)
	q := url.Values{}
	if v := r.URL.Query().Get("page"); v != "" {
		q.Set("page", v)
	}
	var d whereData
	if err := u.call(r, http.MethodGet, apiPath, q, nil, &d.W); err != nil {
		u.fail(w, r, p, err)
		return
	}
	d.Namespaces = strings.Join(d.W.Namespaces, ", ")
	pageURL := func(n int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		return r.URL.Path + "?" + q.Encode()
	}
	if d.W.Page > 1 {
		d.Prev = pageURL(d.W.Page - 1)
	}
	if d.W.Page < d.W.Pages {
		d.Next = pageURL(d.W.Page + 1)
	}
	u.render(w, r, http.StatusOK, "cve", p, d)
}
