// Command drydock is a self-hosted container-image supply-chain guard:
// an embedded OCI registry with quarantine/ and live/ namespaces, import
// from any registry, scanning, patching and promotion.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}
