//go:build tools

// Package stockregistry pins the stock distribution registry binary that
// bench/ compares drydock with. It is a separate module so that the
// registry's command and its dependencies stay out of drydock's go.mod.
//
// Build: cd hack/stockregistry && go build -o DIR/registry github.com/distribution/distribution/v3/cmd/registry
package stockregistry

import _ "github.com/distribution/distribution/v3/cmd/registry"
