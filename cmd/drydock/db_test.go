package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/drydock-project/drydock/internal/vulndb/vulndatatest"
)

func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &globals{stdout: &out, stderr: &errb, logFormat: "text", logLevel: "info"}
	cmd := newRootCmd(g)
	cmd.SetArgs(append(args, "--log-format", "text"))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestDBUpdateStatus(t *testing.T) {
	dir := vulndatatest.Dir(t)
	data := t.TempDir()
	if _, _, err := runCmd(t, "db", "status", "--data", data); err == nil || !strings.Contains(err.Error(), "drydock db update") {
		t.Fatalf("status without a database: %v", err)
	}
	csv := filepath.Join(dir, "debian-eol/distro-info-data/2026.10.12-1/debian.csv")
	out, _, err := runCmd(t, "db", "update", "--data", data, "--only", "distro-info", "--source", "distro-info="+csv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "distro-info") || !strings.Contains(out, "updated") {
		t.Errorf("update output:\n%s", out)
	}
	out, _, err = runCmd(t, "db", "status", "--data", data, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st dbStatusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.SchemaVersion != 1 || st.Stale || len(st.Database.Sources) != 1 || st.Database.Sources[0].Releases == 0 ||
		st.Database.Sources[0].Fetches[0].URL != csv {
		t.Errorf("status: %+v", st)
	}
	out, errOut, err := runCmd(t, "db", "status", "--data", data, "--max-age", "1ns")
	if err != nil || !strings.Contains(out, "distro-info") || !strings.Contains(errOut, "stale") {
		t.Errorf("status --max-age 1ns: %v\n%s\n%s", err, out, errOut)
	}
	if _, _, err := runCmd(t, "db", "update", "--data", data, "--source", "nope"); err == nil || !strings.Contains(err.Error(), "NAME=URL") {
		t.Errorf("bad --source: %v", err)
	}

	// push to an in-process registry, pull into another data dir.
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	ref := strings.TrimPrefix(reg.URL, "http://") + "/drydock/vulndb:latest"
	out, _, err = runCmd(t, "db", "push", "--data", data, ref)
	if err != nil || !strings.Contains(out, ref+"@sha256:") {
		t.Fatalf("push: %v\n%s", err, out)
	}
	other := t.TempDir()
	out, _, err = runCmd(t, "db", "pull", "--data", other, ref)
	if err != nil || !strings.Contains(out, "distro-info") {
		t.Fatalf("pull: %v\n%s", err, out)
	}
	if a, b := readFile(t, filepath.Join(data, "vulndb", "drydock-vuln.db")), readFile(t, filepath.Join(other, "vulndb", "drydock-vuln.db")); !bytes.Equal(a, b) {
		t.Error("pulled database differs from the pushed one")
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
