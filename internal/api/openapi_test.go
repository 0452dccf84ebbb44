package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/drydock-project/drydock/internal/audit"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/gc"
	"github.com/drydock-project/drydock/internal/registry"
	"github.com/drydock-project/drydock/internal/store"
	"github.com/drydock-project/drydock/internal/workflow"
)

// TestOpenAPI: the document validates as OpenAPI 3, documents every route
// of a server with every service, and no route that does not exist.
func TestOpenAPI(t *testing.T) {
	raw, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the OpenAPI document does not validate: %v", err)
	}

	var keeper *gatekeeper.Keeper // the routes are listed, never called
	var engine *workflow.Engine
	var collector *gc.Service
	var scans *store.SQL
	var auditLog *audit.Log
	h := &handler{Options{Gate: keeper, Attest: keeper, Exceptions: keeper, Database: keeper, Workflows: engine, GC: collector, Scans: scans, Audit: auditLog, Policy: keeper, Index: scans, Dashboard: scans,
		Manifests: (*registry.Registry)(nil), Inventories: keeper}}
	var routes, documented []string
	for _, rt := range h.routes() {
		routes = append(routes, rt.method+" "+rt.path)
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(routes)
	slices.Sort(documented)
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("openapi.yaml documents %s, which is no route", d)
		}
	}
	if len(routes) < 20 {
		t.Fatalf("only %d routes: the comparison is vacuous", len(routes))
	}

	// Every operation that takes input or needs a role says what a bad
	// one gets.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if path == "/api/v1/openapi.json" {
				continue
			}
			if op.Responses.Value("401") == nil {
				t.Errorf("%s %s: no 401 response", method, path)
			}
			if (op.RequestBody != nil || len(op.Parameters)+len(item.Parameters) > 0) && op.Responses.Value("400") == nil {
				t.Errorf("%s %s takes input but documents no 400", method, path)
			}
		}
	}

	// Served as JSON, to anyone.
	srv := httptest.NewServer(Handler(Options{Gate: keeper, Authorize: func(*http.Request, string, string) error {
		return io.ErrUnexpectedEOF // every role refused
	}}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || string(body) != string(raw) {
		t.Fatalf("GET /api/v1/openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
