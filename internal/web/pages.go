package web

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/exceptions"
	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/workflow"
)

// Page sizes.
const (
	imagesPerPage = 100
	auditPerPage  = 50
)

// auditActions are the audit log's actions, for the audit page's filter:
// every audit.Action (audit.Action.Valid lists the same).
var auditActions = []audit.Action{audit.ActionPush, audit.ActionDelete, audit.ActionImport, audit.ActionScan, audit.ActionVerdict,
	audit.ActionPromotion, audit.ActionBypassRefused, audit.ActionLoginFailed, audit.ActionPolicyChange, audit.ActionUserChange,
	audit.ActionTokenChange, audit.ActionDenied, audit.ActionGC, audit.ActionAdmission, audit.ActionRollout, audit.ActionException}

// states are the verdict states in the order the UI lists them.
var states = []gate.State{gate.StateFail, gate.StatePending, gate.StatePass, gate.StateExempt}

// dbWarning returns the stale-data warning of the vulnerability database
// ("" when fresh or unknown to the user).
func (u *UI) dbWarning(r *http.Request) string {
	var st gatekeeper.DBStatus
	if err := u.call(r, http.MethodGet, "/api/v1/db/status", nil, nil, &st); err != nil {
		return ""
	}
	return st.Warning
}

type stateCount struct {
	State gate.State
	Count int
}

type dashboardData struct {
	Images   int
	ByState  []stateCount
	Fixable  map[string]int
	FixTotal int
	// Totals are the findings index's, over what the user may pull.
	Totals   api.TotalsResponse
	Runs     []workflowRun
	RunsNote string
	Bypasses []bypass
	// BypassNote says why bypass attempts are not shown.
	BypassNote string
	// Chart and EOL (dashboard_chart.go), or notes why they are not shown.
	Chart              *fixableChart
	ChartNote, EOLNote string
	EOL                *eolList
}

type workflowRun struct {
	Workflow string
	workflow.RunSummary
}

type bypass struct {
	Seq                   int64
	Time                  time.Time
	Actor, Repository, To string
}

func (u *UI) dashboard(w http.ResponseWriter, r *http.Request) {
	p := pageFor(r, "Dashboard", "dashboard")
	p.Stale = u.dbWarning(r)
	// The counts by verdict come with a page of one image.
	var ims api.ImagesResponse
	if err := u.call(r, http.MethodGet, "/api/v1/images", url.Values{"limit": {"1"}}, nil, &ims); err != nil {
		u.fail(w, r, p, err)
		return
	}
	d := dashboardData{Fixable: map[string]int{}}
	for _, s := range states {
		d.ByState = append(d.ByState, stateCount{s, ims.ByState[string(s)]})
		d.Images += ims.ByState[string(s)]
	}
	// One query of the findings index, over the images the user may pull.
	if err := u.call(r, http.MethodGet, "/api/v1/findings/totals", nil, nil, &d.Totals); err != nil {
		u.fail(w, r, p, err)
		return
	}
	for sev, n := range d.Totals.Fixable {
		d.Fixable[sev] += n
		d.FixTotal += n
	}
	d.Runs, d.RunsNote = u.lastRuns(r)
	d.Chart, d.ChartNote = u.fixableChart(r)
	d.EOL, d.EOLNote = u.endOfLife(r)
	if p.Admin {
		var page api.AuditPage
		if err := u.call(r, http.MethodGet, "/api/v1/audit", url.Values{"action": {"bypass_refused"}, "limit": {"10"}}, nil, &page); err != nil {
			d.BypassNote = "The audit log could not be read: " + err.Error()
		}
		for _, e := range page.Entries {
			d.Bypasses = append(d.Bypasses, bypass{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Repository: e.Repository, To: e.Reference})
		}
	} else {
		d.BypassNote = "Refused bypass attempts come from the audit log, which admins read."
	}
	u.render(w, r, http.StatusOK, "dashboard", p, d)
}

// lastRuns returns the newest workflow runs, or a note why there are none.
func (u *UI) lastRuns(r *http.Request) ([]workflowRun, string) {
	var wl struct {
		Workflows []struct {
			Name string `json:"name"`
		} `json:"workflows"`
	}
	if err := u.call(r, http.MethodGet, "/api/v1/workflows", nil, nil, &wl); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return nil, "Workflows are off on this server."
		}
		return nil, "Workflows could not be read: " + err.Error()
	}
	var runs []workflowRun
	for _, wf := range wl.Workflows {
		var rs struct {
			Runs []workflow.RunSummary `json:"runs"`
		}
		if err := u.call(r, http.MethodGet, "/api/v1/workflows/"+url.PathEscape(wf.Name)+"/runs", url.Values{"limit": {"5"}}, nil, &rs); err != nil {
			continue
		}
		for _, run := range rs.Runs {
			runs = append(runs, workflowRun{Workflow: wf.Name, RunSummary: run})
		}
	}
	slices.SortFunc(runs, func(a, b workflowRun) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if len(runs) > 8 {
		runs = runs[:8]
	}
	if len(runs) == 0 {
		return nil, "No workflow has run yet."
	}
	return runs, ""
}

type imagesData struct {
	Images             []store.Image
	Total, Page, Pages int
	State, Repo        string
	States             []gate.State
	Prev, Next         string
	// Counts are the findings index's counts of the page's images.
	Counts map[string]store.ImageCounts
}

func (u *UI) images(w http.ResponseWriter, r *http.Request) {
	p := pageFor(r, "Images", "images")
	q := r.URL.Query()
	d := imagesData{State: q.Get("verdict"), Repo: strings.TrimSpace(q.Get("repository")), States: states, Page: 1}
	if d.State != "" && !slices.Contains(states, gate.State(d.State)) {
		u.fail(w, r, p, &apiError{Status: http.StatusBadRequest, Message: "verdict: " + strconv.Quote(d.State) + ": want fail, pending, pass or exempt"})
		return
	}
	if s := q.Get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			u.fail(w, r, p, &apiError{Status: http.StatusBadRequest, Message: "page: " + strconv.Quote(s) + ": want a page number"})
			return
		}
		d.Page = n
	}
	// The API pages and filters in the store; a page past the last shows
	// the last.
	iq := url.Values{"limit": {strconv.Itoa(imagesPerPage)}, "page": {strconv.Itoa(d.Page)}}
	if d.State != "" {
		iq.Set("verdict", d.State)
	}
	if d.Repo != "" {
		iq.Set("repository", d.Repo)
	}
	var ims api.ImagesResponse
	if err := u.call(r, http.MethodGet, "/api/v1/images", iq, nil, &ims); err != nil {
		u.fail(w, r, p, err)
		return
	}
	if d.Page > ims.Pages {
		iq.Set("page", strconv.Itoa(ims.Pages))
		if err := u.call(r, http.MethodGet, "/api/v1/images", iq, nil, &ims); err != nil {
			u.fail(w, r, p, err)
			return
		}
	}
	d.Images, d.Total, d.Page, d.Pages = ims.Images, ims.Total, ims.Page, ims.Pages
	if len(d.Images) > 0 {
		q := url.Values{}
		for _, im := range d.Images {
			q.Add("digest", im.Digest)
		}
		var counts api.CountsResponse
		if err := u.call(r, http.MethodGet, "/api/v1/findings/counts", q, nil, &counts); err != nil {
			u.fail(w, r, p, err)
			return
		}
		d.Counts = counts.Images
	}
	pageURL := func(n int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		return "/ui/images?" + q.Encode()
	}
	if d.Page > 1 {
		d.Prev = pageURL(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.Next = pageURL(d.Page + 1)
	}
	u.render(w, r, http.StatusOK, "images", p, d)
}

type imageData struct {
	Status     gatekeeper.Status
	Findings   api.FindingsResponse
	Filter     url.Values
	Exceptions []exceptions.Exception
	// Justifications are OpenVEX's, for the exception form.
	Justifications []string
	DefaultExpiry  string
	Self           string
	// More is the image's platforms, layers, packages, lineage and
	// referrers (image.go).
	More imageMore
}

func (u *UI) image(w http.ResponseWriter, r *http.Request) {
	p := pageFor(r, "Image", "images")
	p.Stale = u.dbWarning(r)
	q := r.URL.Query()
	dg, repo := q.Get("digest"), q.Get("repository")
	var d imageData
	// The findings first: the API checks the digest and the caller's pull
	// on the repository it arrived in.
	fq := url.Values{"digest": {dg}}
	for _, k := range []string{"severity", "fixable", "package", "cve", "status"} {
		if v := q.Get(k); v != "" {
			fq.Set(k, v)
		}
	}
	if err := u.call(r, http.MethodGet, "/api/v1/findings", fq, nil, &d.Findings); err != nil {
		u.fail(w, r, p, err)
		return
	}
	repo = cmp.Or(repo, d.Findings.Repository)
	if err := u.call(r, http.MethodGet, "/api/v1/verdict", url.Values{"ref": {repo + "@" + dg}}, nil, &d.Status); err != nil {
		u.fail(w, r, p, err)
		return
	}
	var ex api.ExceptionsResponse
	if err := u.call(r, http.MethodGet, "/api/v1/exceptions", nil, nil, &ex); err == nil {
		for _, e := range ex.Exceptions {
			if e.Scope == exceptions.ScopeGlobal || e.Digest == dg || e.Repository == d.Status.Repository {
				d.Exceptions = append(d.Exceptions, e)
			}
		}
	}
	p.Title = d.Status.Repository + "@" + short(dg)
	d.Filter = q
	d.Justifications = gate.Justifications
	d.DefaultExpiry = time.Now().AddDate(0, 0, 30).UTC().Format("2006-01-02")
	d.Self = r.URL.RequestURI()
	d.More = u.imageMore(r, dg, q)
	u.render(w, r, http.StatusOK, "image", p, d)
}

func (u *UI) audit(w http.ResponseWriter, r *http.Request) {
	p := pageFor(r, "Audit log", "audit")
	q := url.Values{"limit": {strconv.Itoa(auditPerPage)}}
	for _, k := range []string{"before", "action"} {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	var page api.AuditPage
	if err := u.call(r, http.MethodGet, "/api/v1/audit", q, nil, &page); err != nil {
		u.fail(w, r, p, err)
		return
	}
	next := ""
	if page.NextBefore > 0 {
		nq := r.URL.Query()
		nq.Set("before", strconv.FormatInt(page.NextBefore, 10))
		next = "/ui/audit?" + nq.Encode()
	}
	u.render(w, r, http.StatusOK, "audit", p, map[string]any{"Page": page, "Next": next, "Action": r.URL.Query().Get("action"),
		"Actions": auditActions})
}

// createException: the image page's exception form, sent to the API.
func (u *UI) createException(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	from := f.Get("back")
	req := api.ExceptionRequest{Scope: exceptions.Scope(f.Get("scope")), CVE: strings.TrimSpace(f.Get("cve")), Package: strings.TrimSpace(f.Get("package")),
		Justification: f.Get("justification"), Reason: strings.TrimSpace(f.Get("reason"))}
	switch req.Scope {
	case exceptions.ScopeDigest:
		req.Digest = f.Get("digest")
	case exceptions.ScopeRepository:
		req.Repository = f.Get("repository")
	}
	if s := f.Get("expires"); s != "" {
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			back(w, r, from, "problem", "expires: "+strconv.Quote(s)+": want a date, e.g. 2027-01-31")
			return
		}
		req.Expires = t.UTC().Format(time.RFC3339)
	}
	var ch gatekeeper.ExceptionChange
	if err := u.call(r, http.MethodPost, "/api/v1/exceptions", nil, req, &ch); err != nil {
		back(w, r, from, "problem", "The exception ("+strings.TrimSpace(req.CVE+" "+req.Package)+") was not created: "+apiMessage(err))
		return
	}
	covers := strings.TrimSpace(req.CVE + " " + req.Package)
	back(w, r, from, "notice", "Exception "+strconv.FormatInt(ch.Exception.ID, 10)+" ("+covers+") created; "+strconv.Itoa(len(ch.Verdicts))+" verdict(s) decided again.")
}

func (u *UI) revokeException(w http.ResponseWriter, r *http.Request) {
	from := r.PostForm.Get("back")
	id := r.PostForm.Get("id")
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		back(w, r, from, "problem", "id: "+strconv.Quote(id)+": want an exception number")
		return
	}
	var ch gatekeeper.ExceptionChange
	if err := u.call(r, http.MethodPost, "/api/v1/exceptions/"+id+"/revoke", nil, struct{}{}, &ch); err != nil {
		back(w, r, from, "problem", "The exception was not revoked: "+apiMessage(err))
		return
	}
	back(w, r, from, "notice", "Exception "+id+" revoked; "+strconv.Itoa(len(ch.Verdicts))+" verdict(s) decided again.")
}

func apiMessage(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Message
	}
	return "the server failed; see its log"
}
