package web

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/scan"
)

// page is what the layout shows around every page.
type page struct {
	Title string
	// Nav names the current section (dashboard, images, audit).
	Nav string
	// CSRF is the token of the page's forms.
	CSRF  string
	User  string
	Admin bool
	// Notice and Problem are one-line messages after an action.
	Notice, Problem string
	// Stale warns that the vulnerability data is old.
	Stale string
	// Refresh, when not 0, reloads the page after that many seconds (a
	// meta refresh: live progress without scripts).
	Refresh int
}

// pageFor fills the layout's data of a signed-in request.
func pageFor(r *http.Request, title, nav string) *page {
	s := current(r)
	p := &page{Title: title, Nav: nav, User: s.p.Name, Admin: s.p.Allows(auth.RoleAdmin, auth.AllNamespaces)}
	if s.sess != nil {
		p.CSRF = s.sess.CSRF
	}
	q := r.URL.Query()
	p.Notice, p.Problem = clip(q.Get("notice")), clip(q.Get("problem"))
	return p
}

// clip bounds a message carried in a URL.
func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// short is a digest's first 12 hex digits.
func short(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return hex[:12]
	}
	return d
}

// severities are scan.Severities highest first, as the pages list them.
var severities = func() []string {
	var out []string
	for _, s := range slices.Backward(scan.Severities) {
		out = append(out, string(s))
	}
	return out
}()

var funcs = template.FuncMap{
	"short": short,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"lower": strings.ToLower,
	"sevs":  func() []string { return severities },
	// with returns the current URL with key set to value (and the page
	// reset), for filter links.
	"with": func(u *url.URL, kv ...string) string {
		q := u.Query()
		q.Del("page")
		q.Del("before")
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				q.Del(kv[i])
			} else {
				q.Set(kv[i], kv[i+1])
			}
		}
		if len(q) == 0 {
			return u.Path
		}
		return u.Path + "?" + q.Encode()
	},
	"pct": func(n, total int) string {
		if total == 0 {
			return "0"
		}
		return strconv.FormatFloat(float64(n)*100/float64(total), 'f', 1, 64)
	},
}

func parsePages() (map[string]*template.Template, error) {
	names := []string{"login", "dashboard", "images", "image", "audit", "error", "cve"}
	names = append(names, "policy", "workflows", "run")
	names = append(names, "artifact")
	pages := map[string]*template.Template{}
	for _, n := range names {
		files := append([]string{"templates/layout.html", "templates/" + n + ".html"}, parts[n]...)
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, files...)
		if err != nil {
			return nil, fmt.Errorf("web UI template %s: %w", n, err)
		}
		pages[n] = t
	}
	return pages, nil
}

// render writes a page: the layout around template name with data.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page, data any) {
	var buf bytes.Buffer
	err := u.pages[name].Execute(&buf, map[string]any{"Page": p, "Data": data, "URL": r.URL})
	if err != nil {
		u.o.Log.Error("web UI: rendering a page failed", "page", name, "err", err)
		http.Error(w, "rendering the page failed; see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// fail renders an error page for an API error (its status: 403 when the
// user lacks the role) or any other error (500).
func (u *UI) fail(w http.ResponseWriter, r *http.Request, p *page, err error) {
	status, msg := http.StatusInternalServerError, "The request failed on the server; see its log."
	var ae *apiError
	if errors.As(err, &ae) && ae.Status < 500 {
		status, msg = ae.Status, ae.Message
		if ae.Status == http.StatusForbidden {
			msg = "You may not see or do this: " + ae.Message
		}
	} else {
		u.o.Log.Error("web UI: a page failed", "path", r.URL.Path, "err", err)
	}
	p.Title = http.StatusText(status)
	u.render(w, r, status, "error", p, map[string]any{"Message": msg})
}

// back redirects to a path of the UI with a notice or a problem (in place
// of the one the page was shown with).
func back(w http.ResponseWriter, r *http.Request, to, key, msg string) {
	to = safeNext(to)
	path, query, _ := strings.Cut(to, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		q = url.Values{}
	}
	q.Del("notice")
	q.Del("problem")
	q.Set(key, clip(msg))
	http.Redirect(w, r, path+"?"+q.Encode(), http.StatusSeeOther)
}
