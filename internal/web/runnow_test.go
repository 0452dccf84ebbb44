package web

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/drydock-project/drydock/internal/api"
	"github.com/drydock-project/drydock/internal/auth"
	"github.com/drydock-project/drydock/internal/workflow"
)

// TestRunNowOnlyForWriters: the workflows page offers "Run now" only to
// who may start a run (push in quarantine); a reader sees none, and the
// API refuses the reader's POST all the same.
func TestRunNowOnlyForWriters(t *testing.T) {
	wf := &fakeWorkflows{state: workflow.StateSucceeded}
	h := newHarness(t, func(o *api.Options) { o.Workflows = wf })
	if err := h.store.AddUser(context.Background(), "writer", "writer-password",
		auth.Grants{{Role: auth.RolePull, Namespace: "quarantine"}, {Role: auth.RolePush, Namespace: "quarantine"}}); err != nil {
		t.Fatal(err)
	}
	const button = `aria-label="Run workflow nightly now"`
	for user, want := range map[string]bool{"reader": false, "writer": true, "root": true} {
		c := h.client(t)
		c.login(user, user+"-password")
		resp, body := c.do("GET", "/ui/workflows", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, `href="/ui/workflows/nightly/runs/r1"`) {
			t.Fatalf("%s: workflows page %d:\n%s", user, resp.StatusCode, body)
		}
		if got := strings.Contains(body, button); got != want {
			t.Errorf("%s sees Run now: %v, want %v", user, got, want)
		}
		if user == "reader" {
			// The form is absent; a forged POST is refused by the API.
			resp, _ := c.do("POST", "/ui/workflows/nightly/run", url.Values{"csrf": {csrfOf(t, body)}})
			if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || !strings.Contains(loc, "problem=") || !strings.Contains(loc, "did+not+start") {
				t.Errorf("a reader's POST: %d %s", resp.StatusCode, loc)
			}
		}
	}
}
