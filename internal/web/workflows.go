package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/workflow"
)

// runsPerWorkflow is how many runs the workflows page lists per workflow.
const runsPerWorkflow = 5

// runRefresh is the seconds between reloads of a run page while the run
// is not finished: a meta refresh, which needs no script.
const runRefresh = 2

func (u *UI) workflowRoutes() {
	u.mux.Handle("GET /ui/workflows", u.session(u.workflows))
	u.mux.Handle("POST /ui/workflows/{name}/run", u.session(u.runWorkflow))
	u.mux.Handle("GET /ui/workflows/{name}/runs/{id}", u.session(u.workflowRun))
}

// workflowRow is one workflow of the workflows page with its last runs.
type workflowRow struct {
	View *workflow.View
	Runs []workflow.RunSummary
}

// workflows: GET /ui/workflows, every workflow with its last runs.
func (u *UI) workflows(w http.ResponseWriter, r *http.Request) {
	p := pageFor(r, "Workflows", "workflows")
	var list struct {
		Workflows []*workflow.View `json:"workflows"`
	}
	if err := u.call(r, http.MethodGet, "/api/v1/workflows", nil, nil, &list); err != nil {
		u.fail(w, r, p, err)
		return
	}
	rows := make([]workflowRow, 0, len(list.Workflows))
	for _, v := range list.Workflows {
		var runs struct {
			Runs []workflow.RunSummary `json:"runs"`
		}
		if err := u.call(r, http.MethodGet, "/api/v1/workflows/"+url.PathEscape(v.Name)+"/runs",
			url.Values{"limit": {strconv.Itoa(runsPerWorkflow)}}, nil, &runs); err != nil {
			u.fail(w, r, p, err)
			return
		}
		rows = append(rows, workflowRow{View: v, Runs: runs.Runs})
	}
	// "Run now" only for who may start a run; the API refuses anyone else.
	caller := current(r).p
	canRun := api.StartsWorkflows(func(role, ns string) bool { return caller.Allows(auth.Role(role), ns) })
	u.render(w, r, http.StatusOK, "workflows", p, map[string]any{"Workflows": rows, "CanRun": canRun})
}

// runWorkflow: POST /ui/workflows/{name}/run starts a run now and shows
// it.
func (u *UI) runWorkflow(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var run workflow.Run
	if err := u.call(r, http.MethodPost, "/api/v1/workflows/"+url.PathEscape(name)+"/runs", nil, struct{}{}, &run); err != nil {
		back(w, r, "/ui/workflows", "problem", "Workflow "+name+" did not start: "+apiMessage(err))
		return
	}
	http.Redirect(w, r, "/ui/workflows/"+url.PathEscape(name)+"/runs/"+url.PathEscape(run.ID), http.StatusSeeOther)
}

// workflowRun: GET /ui/workflows/{name}/runs/{id}, a run's tasks and log,
// reloaded every runRefresh seconds until the run is finished.
func (u *UI) workflowRun(w http.ResponseWriter, r *http.Request) {
	name, id := r.PathValue("name"), r.PathValue("id")
	p := pageFor(r, "Run "+id, "workflows")
	var d workflow.RunDetail
	if err := u.call(r, http.MethodGet, "/api/v1/workflow-runs/"+url.PathEscape(id), nil, nil, &d); err != nil {
		u.fail(w, r, p, err)
		return
	}
	if d.Run == nil || d.Run.Workflow != name {
		u.fail(w, r, p, &apiError{Status: http.StatusNotFound, Message: "workflow " + name + " has no run " + id})
		return
	}
	if !d.Run.State.Finished() {
		p.Refresh = runRefresh
	}
	p.Title = "Run " + id + " of " + name
	u.render(w, r, http.StatusOK, "run", p, map[string]any{"Detail": d, "Name": name})
}
