package gatekeeper

import (
	"fmt"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/drydock-project/drydock/internal/gate"
)

// ValidateStoredPolicy is ValidatePolicy for a policy kept in the
// database: besides, each requireSignedBy key must be an absolute path. A
// file's policy resolves a relative path against the file's directory; a
// stored one has no directory, and each replica would read the key
// relative to its own working directory.
func ValidateStoredPolicy(text string) error {
	if err := ValidatePolicy(text); err != nil {
		return err
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(text), &root); err != nil || len(root.Content) == 0 {
		return nil // ValidatePolicy read it
	}
	doc := root.Content[0]
	var probs []gate.Problem
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "requireSignedBy" {
			continue
		}
		for j, item := range doc.Content[i+1].Content {
			if !filepath.IsAbs(item.Value) {
				probs = append(probs, gate.Problem{Field: fmt.Sprintf("requireSignedBy[%d]", j), Line: item.Line,
					Message: fmt.Sprintf("%q is a relative path: a policy stored in the database names each key by its absolute path on the servers", item.Value)})
			}
		}
	}
	if len(probs) > 0 {
		return &gate.PolicyError{Problems: probs}
	}
	return nil
}
