package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/gatekeeper"
	"github.com/drydock-project/drydock/internal/vulndb"
	"github.com/drydock-project/drydock/internal/vulndb/realdb"
)

// TestDBStatusDataAge: a database built from February 2025's data is as
// old as its newest record, whenever it was built: status says so and
// warns (#17: "a DB of February 2025 data says built 0s ago and warns
// nothing").
func TestDBStatusDataAge(t *testing.T) {
	data := t.TempDir()
	realdb.Copy(t, filepath.Join(data, "vulndb", "drydock-vuln.db"))
	out, _, err := runCmd(t, "db", "status", "--data", data, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st dbStatusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.DataAsOf.IsZero() || st.DataAsOf.After(realdb.DataDate.Add(30*24*time.Hour)) || st.DataAsOf.Before(realdb.DataDate.Add(-30*24*time.Hour)) {
		t.Fatalf("dataAsOf %s, want the newest record, near %s", st.DataAsOf, realdb.DataDate)
	}
	if !st.Stale || st.MaxAgeSeconds != int64(vulndb.DefaultMaxDataAge/time.Second) || st.DataAgeSeconds < int64(time.Since(st.DataAsOf)/time.Second)-60 {
		t.Fatalf("status %+v: want stale data, over a year old, against the default 72h", st)
	}
	out, errOut, err := runCmd(t, "db", "status", "--data", data)
	if err != nil || !strings.Contains(out, "Data:     "+st.DataAsOf.Format(time.RFC3339)) || !strings.Contains(errOut, "stale vulnerability data") {
		t.Fatalf("status: %v\n%s\n%s", err, out, errOut)
	}
	if _, errOut, _ := runCmd(t, "db", "status", "--data", data, "--max-age", "100000h"); strings.Contains(errOut, "stale") {
		t.Fatalf("a generous --max-age still warns: %s", errOut)
	}
}

func TestVerdictWarnsStaleData(t *testing.T) {
	st := &gatekeeper.Status{Repository: "quarantine/x", Digest: "sha256:1", Verdict: gate.Verdict{State: gate.StatePass}}
	var b bytes.Buffer
	writeVerdict(&b, st)
	if strings.Contains(b.String(), "WARNING") {
		t.Fatalf("a warning without database information:\n%s", b.String())
	}
	f := vulndb.Meta{BuiltAt: realdb.DataDate, Sources: []vulndb.SourceMeta{{Name: "osv", DataAsOf: realdb.DataDate}}}.
		Freshness(realdb.DataDate.Add(96*time.Hour), vulndb.DefaultMaxDataAge)
	st.Database = &f
	b.Reset()
	writeVerdict(&b, st)
	if !strings.Contains(b.String(), "WARNING:   stale vulnerability data, 96h0m0s old") {
		t.Fatalf("no stale warning:\n%s", b.String())
	}
}
