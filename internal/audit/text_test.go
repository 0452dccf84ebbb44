package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestWriteText(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"push", Entry{Seq: 1, Time: at, Actor: "alice", Action: ActionPush, Repository: "quarantine/nginx",
			Reference: "1.27.1", Digest: digestA, Outcome: OutcomeOK},
			"2025-01-02T03:04:05.123456Z      1 alice push ok quarantine/nginx:1.27.1@" + digestA + " -\n"},
		{"reference is the digest", Entry{Seq: 2, Time: at, Actor: "system", Action: ActionScan, Repository: "r",
			Reference: digestA, Digest: digestA, Outcome: OutcomeOK, Detail: json.RawMessage(`{"high":2}`)},
			"2025-01-02T03:04:05.123456Z      2 system scan ok r@" + digestA + ` {"high":2}` + "\n"},
		{"login failure, hostile actor", Entry{Seq: 3, Time: at, Actor: "eve\nFAKE LINE", Action: ActionLoginFailed,
			Outcome: OutcomeRefused, Detail: json.RawMessage("{\n\"ip\": \"10.0.0.1\"\n}")},
			`2025-01-02T03:04:05.123456Z      3 "eve\nFAKE LINE" login_failed refused - {"ip":"10.0.0.1"}` + "\n"},
		{"long detail", Entry{Seq: 4, Time: at, Actor: "a", Action: ActionPolicyChange, Outcome: OutcomeOK,
			Detail: json.RawMessage(`{"policy":"` + strings.Repeat("x", 100) + `"}`)},
			"2025-01-02T03:04:05.123456Z      4 a policy_change ok - " + `{"policy":"` + strings.Repeat("x", 68) + "…\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteText(&b, &tt.e); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Fatalf("WriteText =\n%q\nwant\n%q", b.String(), tt.want)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	l := newTestLog(t, NewMemory())
	stored := record(t, l, sampleEntries()[1])
	var b bytes.Buffer
	if err := WriteJSON(&b, stored[0]); err != nil {
		t.Fatal(err)
	}
	want := `{"seq":1,"time":"2025-01-02T03:04:05.123456Z","actor":"system","action":"scan",` +
		`"repository":"quarantine/nginx","digest":"` + digestA + `","outcome":"ok",` +
		`"detail":{"critical":1,"db":"2025-01-01","high":2},"prev_hash":"` + GenesisHash + `","hash":"` + stored[0].Hash + "\"}\n"
	if b.String() != want {
		t.Fatalf("WriteJSON =\n%s\nwant\n%s", b.String(), want)
	}
	var back Entry
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.ComputeHash() != stored[0].Hash {
		t.Fatal("an entry read back from its JSON line no longer verifies")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("closed pipe") }

func TestWriteErrors(t *testing.T) {
	e := &Entry{Seq: 1, Actor: "a", Action: ActionPush}
	if WriteText(failWriter{}, e) == nil || WriteJSON(failWriter{}, e) == nil {
		t.Fatal("write errors not reported")
	}
}
