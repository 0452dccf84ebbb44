package gatekeeper

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydock-project/drydock/internal/gate"
	"github.com/drydock-project/drydock/internal/vulndb"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// fileWriter writes a file so that every version differs in size from the
// previous one: the sources detect changes by size and modification time,
// and a modification time may not change within one clock tick.
type fileWriter struct {
	t        testing.TB
	path     string
	lastSize int
}

// write stores content, padded with a comment when it has the size of the
// previous version, and returns what was written.
func (w *fileWriter) write(content string) string {
	w.t.Helper()
	for len(content) == w.lastSize {
		content += "#\n"
	}
	if err := os.WriteFile(w.path, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.lastSize = len(content)
	return content
}

func TestPolicySourceDefault(t *testing.T) {
	s, err := NewPolicySource("")
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != "" {
		t.Errorf("Path() = %q, want empty for the built-in policy", s.Path())
	}
	want, err := gate.LoadPolicy(strings.NewReader(DefaultPolicy))
	if err != nil {
		t.Fatalf("DefaultPolicy does not load: %v", err)
	}
	for range 2 { // the second call serves the cached policy
		p, hash, err := s.Get()
		if err != nil {
			t.Fatal(err)
		}
		if p == nil || p.MaxSeverity != want.MaxSeverity || p.FixableOnly != want.FixableOnly ||
			p.BlockEndOfLife != want.BlockEndOfLife || p.GraceWindow != want.GraceWindow || p.AutoPromote != want.AutoPromote {
			t.Errorf("policy %+v, want DefaultPolicy %+v", p, want)
		}
		if p != nil && (p.MaxSeverity != vulndb.SeverityHigh || p.GraceWindow != 72*time.Hour || p.AutoPromote) {
			t.Errorf("built-in policy %+v: want HIGH, 72h grace, no auto-promotion", p)
		}
		if hash != sha256Hex(DefaultPolicy) {
			t.Errorf("hash %q, want the SHA-256 of DefaultPolicy", hash)
		}
	}
}

func TestNewPolicySourceRefusesBrokenFile(t *testing.T) {
	dir := t.TempDir()
	invalid := filepath.Join(dir, "invalid.yaml")
	if err := os.WriteFile(invalid, []byte("version: v1\nmaxSeverity: EXTREME\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		wantNotExt bool
	}{
		{"missing", filepath.Join(dir, "missing.yaml"), true},
		{"invalid", invalid, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewPolicySource(tt.path)
			if err == nil || s != nil {
				t.Fatalf("NewPolicySource(%s) = %v, %v; want an error", tt.name, s, err)
			}
			if errors.Is(err, fs.ErrNotExist) != tt.wantNotExt {
				t.Errorf("error %v: errors.Is(fs.ErrNotExist) = %v", err, !tt.wantNotExt)
			}
		})
	}
}

func TestPolicySourceReload(t *testing.T) {
	w := &fileWriter{t: t, path: filepath.Join(t.TempDir(), "policy.yaml")}
	first := w.write("version: v1\nmaxSeverity: HIGH\n")
	s, err := NewPolicySource(w.path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != w.path {
		t.Errorf("Path() = %q, want %q", s.Path(), w.path)
	}
	steps := []struct {
		name    string
		content string // "" deletes the file
		keep    bool   // leave the file as it is
		wantSev vulndb.Severity
		wantErr string // substring; "" = a usable policy
		notExt  bool   // the error is fs.ErrNotExist
	}{
		{name: "first version", keep: true, wantSev: vulndb.SeverityHigh},
		{name: "changed", content: "version: v1\nmaxSeverity: CRITICAL\ngraceWindow: 24h\n", wantSev: vulndb.SeverityCritical},
		{name: "unchanged", keep: true, wantSev: vulndb.SeverityCritical},
		{name: "invalid fails closed", content: "version: v1\nmaxSeverity: EXTREME\n", wantErr: "maxSeverity"},
		{name: "still invalid", keep: true, wantErr: "maxSeverity"},
		{name: "not YAML", content: "version: [v1\n", wantErr: "policy " + w.path},
		{name: "fixed", content: "version: v1\nmaxSeverity: LOW\n", wantSev: vulndb.SeverityLow},
		{name: "deleted", content: "", wantErr: "policy file", notExt: true},
		{name: "still deleted", keep: true, wantErr: "policy file", notExt: true},
		{name: "recreated with the first text", content: first, wantSev: vulndb.SeverityHigh},
	}
	current := first
	seen := map[string]string{} // hash -> text
	for _, st := range steps {
		switch {
		case st.keep:
		case st.content == "":
			if err := os.Remove(w.path); err != nil {
				t.Fatal(err)
			}
			current = ""
		default:
			current = w.write(st.content)
		}
		p, hash, err := s.Get()
		if st.wantErr != "" {
			if err == nil || p != nil {
				t.Fatalf("%s: Get() = %+v, %v; want no policy and an error", st.name, p, err)
			}
			if !strings.Contains(err.Error(), st.wantErr) {
				t.Errorf("%s: error %q does not mention %q", st.name, err, st.wantErr)
			}
			if errors.Is(err, fs.ErrNotExist) != st.notExt {
				t.Errorf("%s: error %v: errors.Is(fs.ErrNotExist) = %v", st.name, err, !st.notExt)
			}
		} else {
			if err != nil || p == nil {
				t.Fatalf("%s: Get() = %+v, %v; want a policy", st.name, p, err)
			}
			if p.MaxSeverity != st.wantSev {
				t.Errorf("%s: maxSeverity %s, want %s", st.name, p.MaxSeverity, st.wantSev)
			}
		}
		wantHash := ""
		if current != "" {
			wantHash = sha256Hex(current)
		}
		if hash != wantHash {
			t.Errorf("%s: hash %q, want %q (SHA-256 of the file's text)", st.name, hash, wantHash)
		}
		if prev, ok := seen[hash]; ok && prev != current {
			t.Errorf("%s: hash %q shared by two texts", st.name, hash)
		}
		seen[hash] = current
	}
}

// vexStatement is one OpenVEX not_affected statement.
func vexStatement(cve, product string, expires time.Time) string {
	return fmt.Sprintf(`{"vulnerability": {"name": %q}, "products": [{"@id": %q}],
"status": "not_affected", "justification": "vulnerable_code_not_in_execute_path",
"impact_statement": "not reachable", "expires": %q}`, cve, product, expires.UTC().Format(time.RFC3339))
}

// vexDocument is an OpenVEX document with id and statements.
func vexDocument(id string, statements ...string) string {
	return `{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.test/vex/` + id + `",
"author": "security@example.test", "timestamp": "2026-01-01T00:00:00Z", "version": 1,
"statements": [` + strings.Join(statements, ",") + `]}`
}

func exceptionIDs(ex []gate.Exception) []string {
	var ids []string
	for _, e := range ex {
		ids = append(ids, e.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestExceptionSource(t *testing.T) {
	dir := t.TempDir()
	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good.json", vexDocument("good", vexStatement("CVE-2024-1", "quarantine/app", expires)))
	// No justification: the whole file is left out.
	write("bad.json", vexDocument("bad",
		vexStatement("CVE-2024-2", "quarantine/app", expires),
		`{"vulnerability": {"name": "CVE-2024-3"}, "products": [{"@id": "quarantine/app"}],
		  "status": "not_affected", "expires": "2030-01-01T00:00:00Z"}`))
	write("notes.txt", "not a VEX document, and not *.json")

	s, err := NewExceptionSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name      string
		change    func()
		wantIDs   []string
		wantErrIn []string // one error per string, mentioning it
	}{
		{
			name:      "one valid, one invalid",
			wantIDs:   []string{"https://example.test/vex/good#0"},
			wantErrIn: []string{"bad.json: statement 1 (CVE-2024-3): justification: required"},
		},
		{
			name:      "unchanged",
			wantIDs:   []string{"https://example.test/vex/good#0"},
			wantErrIn: []string{"bad.json"},
		},
		{
			name: "a file added",
			change: func() {
				write("more.json", vexDocument("more",
					vexStatement("CVE-2024-4", "quarantine/app", expires),
					vexStatement("CVE-2024-5", "sha256:"+strings.Repeat("0", 64), expires)))
			},
			wantIDs:   []string{"https://example.test/vex/good#0", "https://example.test/vex/more#0", "https://example.test/vex/more#1"},
			wantErrIn: []string{"bad.json"},
		},
		{
			name: "the invalid file fixed",
			change: func() {
				write("bad.json", vexDocument("bad", vexStatement("CVE-2024-2", "quarantine/app", expires)))
			},
			wantIDs:   []string{"https://example.test/vex/bad#0", "https://example.test/vex/good#0", "https://example.test/vex/more#0", "https://example.test/vex/more#1"},
			wantErrIn: nil,
		},
		{
			name:      "a file removed",
			change:    func() { _ = os.Remove(filepath.Join(dir, "more.json")) },
			wantIDs:   []string{"https://example.test/vex/bad#0", "https://example.test/vex/good#0"},
			wantErrIn: nil,
		},
		{
			name:      "not JSON",
			change:    func() { write("good.json", "{") },
			wantIDs:   []string{"https://example.test/vex/bad#0"},
			wantErrIn: []string{"good.json"},
		},
	}
	for _, st := range steps {
		if st.change != nil {
			st.change()
		}
		ex, errs := s.Get()
		if got := exceptionIDs(ex); !slices.Equal(got, st.wantIDs) {
			t.Errorf("%s: exceptions %q, want %q", st.name, got, st.wantIDs)
		}
		if len(errs) != len(st.wantErrIn) {
			t.Errorf("%s: errors %v, want %d", st.name, errs, len(st.wantErrIn))
			continue
		}
		for i, err := range errs {
			if !strings.Contains(err.Error(), st.wantErrIn[i]) {
				t.Errorf("%s: error %q does not mention %q", st.name, err, st.wantErrIn[i])
			}
		}
	}
	// The loaded exception is usable as read.
	ex, _ := s.Get()
	for _, e := range ex {
		if e.ID == "https://example.test/vex/bad#0" {
			if e.CVE != "CVE-2024-2" || !e.Expires.Equal(expires) || e.Author != "security@example.test" {
				t.Errorf("exception %+v", e)
			}
			if ok, _ := e.Applies("CVE-2024-2", testDigest, "quarantine/app", expires.Add(-time.Hour)); !ok {
				t.Errorf("exception %s does not apply to quarantine/app", e.ID)
			}
		}
	}
}

func TestNewExceptionSource(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file.json")
	if err := os.WriteFile(file, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir string
		wantErr   string
	}{
		{name: "none", dir: ""},
		{name: "empty directory", dir: t.TempDir()},
		{name: "missing", dir: filepath.Join(t.TempDir(), "missing"), wantErr: "exceptions directory"},
		{name: "a file", dir: file, wantErr: "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewExceptionSource(tt.dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("NewExceptionSource(%q) error %v, want one mentioning %q", tt.dir, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ex, errs := s.Get(); len(ex) != 0 || len(errs) != 0 {
				t.Errorf("Get() = %v, %v; want nothing", ex, errs)
			}
		})
	}
}
