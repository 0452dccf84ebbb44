package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPolicyValidate(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "version: v1\nmaxSeverity: HIGH\nfixableOnly: true\nignoreStatuses: [will_not_fix, no-dsa]\ngraceWindow: 72h\n")
	out, _, err := runCmd(t, "policy", "validate", good)
	if err != nil || !strings.Contains(out, "valid policy") {
		t.Fatalf("valid policy: %v\n%s", err, out)
	}

	bad := write("bad.yaml", "version: v2\nmaxSeverity: HIGHH\ngraceWindow: soon\n")
	out, _, err = runCmd(t, "policy", "validate", bad)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "3 problems") {
		t.Fatalf("invalid policy: %v", err)
	}
	for _, want := range []string{"line 1: version:", "line 2: maxSeverity:", "line 3: graceWindow:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	unknown := write("unknown.yaml", "version: v1\nmaxSeverity: HIGH\nmaxSeverty: LOW\n")
	out, _, _ = runCmd(t, "policy", "validate", unknown, "--json")
	var res struct {
		Valid    bool
		Problems []struct{ Field, Message string }
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if res.Valid || len(res.Problems) != 1 || res.Problems[0].Field != "maxSeverty" || strings.Contains(out, "rawPolicy") {
		t.Errorf("unknown field: %+v", res)
	}

	if _, _, err := runCmd(t, "policy", "validate", filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}
