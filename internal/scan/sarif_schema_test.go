package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/drydock-project/drydock/internal/testenv"
)

// sarifSchemaModule is a module on the Go module proxy that ships the
// published SARIF 2.1.0 JSON schema (OASIS, sarif-schema-2.1.0.json) in its
// test data. The test fetches it into the module cache with
// "go mod download", which leaves go.mod alone.
const (
	sarifSchemaModule = "github.com/securego/gosec/v2@v2.30.0"
	sarifSchemaFile   = "report/sarif/testdata/sarif-schema-2.1.0.json"
)

var sarifSchemaOnce = sync.OnceValues(func() (*jsonschema.Schema, error) {
	out, err := exec.Command("go", "mod", "download", "-json", sarifSchemaModule).Output()
	if err != nil {
		return nil, fmt.Errorf("go mod download %s: %w", sarifSchemaModule, err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return nil, fmt.Errorf("go mod download %s: %v %s", sarifSchemaModule, err, mod.Error)
	}
	f, err := os.Open(filepath.Join(mod.Dir, sarifSchemaFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("reading the SARIF schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const id = "https://json.schemastore.org/sarif-2.1.0.json"
	if err := c.AddResource(id, doc); err != nil {
		return nil, err
	}
	return c.Compile(id)
})

// validateSARIFSchema validates data against the published SARIF 2.1.0
// schema. Without the module proxy it skips, except under CI=true.
func validateSARIFSchema(t *testing.T, data []byte) error {
	t.Helper()
	sch, err := sarifSchemaOnce()
	if err != nil {
		testenv.Missing(t, "SARIF schema unavailable: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

func TestSARIFValidatesAgainstPublishedSchema(t *testing.T) {
	golden := goldenReport()
	unsupported := goldenReport()
	unsupported.Status, unsupported.StatusReason, unsupported.Findings = StatusUnsupported, "fedora 41 is not supported", nil
	for name, r := range map[string]*Report{"findings": golden, "unsupported": unsupported} {
		var buf bytes.Buffer
		if err := WriteSARIF(&buf, r); err != nil {
			t.Fatal(err)
		}
		if err := validateSARIFSchema(t, buf.Bytes()); err != nil {
			t.Errorf("%s: SARIF output fails the SARIF 2.1.0 schema: %v", name, err)
		}
	}
	// The schema really constrains: a result level outside the enum fails.
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, golden); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(buf.Bytes(), []byte(`"level": "error"`), []byte(`"level": "fatal"`), 1)
	if bytes.Equal(bad, buf.Bytes()) {
		t.Fatal("golden SARIF has no error-level result to break")
	}
	if err := validateSARIFSchema(t, bad); err == nil {
		t.Error("a SARIF document with level \"fatal\" passed the schema")
	}
}
