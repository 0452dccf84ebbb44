// Command drydock is a self-hosted container-image supply-chain guard:
// an embedded OCI registry with quarantine/ and live/ namespaces, import
// from any registry, scanning, patching and promotion.
package main

import (
	"os"

	"github.com/drydock-project/drydock/internal/patch/sandbox"
)

func main() {
	// The patch sandbox's own processes are this program started again.
	sandbox.Init()
	os.Exit(run(os.Args[1:]))
}
