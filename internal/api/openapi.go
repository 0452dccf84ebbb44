package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"

	"gopkg.in/yaml.v3"
)

// openapiYAML is the API's OpenAPI 3 document, written by hand beside the
// routes; TestOpenAPI checks that it documents every route, no other, and
// validates.
//
//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns the API's OpenAPI document as JSON.
func OpenAPI() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	return append(b, '\n'), nil
}

// openapi: GET /api/v1/openapi.json, for anyone (it describes, it
// discloses nothing): the server mounts OpenAPIHandler before
// authentication.
func (h *handler) openapi(w http.ResponseWriter, r *http.Request) { OpenAPIHandler().ServeHTTP(w, r) }

// OpenAPIHandler serves the OpenAPI document, without credentials.
func OpenAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, err := OpenAPI()
		if err != nil {
			writeError(w, http.StatusInternalServerError, "INTERNAL", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
}
