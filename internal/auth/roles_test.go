package auth

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestParseGrant(t *testing.T) {
	tests := []struct {
		in      string
		want    Grant
		wantErr string
	}{
		{in: "push:quarantine", want: Grant{RolePush, "quarantine"}},
		{in: " pull:live ", want: Grant{RolePull, "live"}},
		{in: "pull", want: Grant{RolePull, "*"}},
		{in: "promote:*", want: Grant{RolePromote, "*"}},
		{in: "admin", want: Grant{RoleAdmin, "*"}},
		{in: "admin:*", want: Grant{RoleAdmin, "*"}},
		{in: "push:team-a.b_c", want: Grant{RolePush, "team-a.b_c"}},
		{in: "admin:live", wantErr: "admin is global"},
		{in: "write:live", wantErr: `unknown role "write" (valid roles: pull, push, promote, metrics, admin`},
		{in: "metrics", want: Grant{RoleMetrics, "*"}},
		{in: "metrics:*", want: Grant{RoleMetrics, "*"}},
		{in: "metrics:live", wantErr: `metrics is global (it is not about repositories): write just "metrics"`},
		{in: "PUSH:live", wantErr: `unknown role "PUSH"`},
		{in: "push:", wantErr: `invalid namespace ""`},
		{in: "push:Live", wantErr: `invalid namespace "Live"`},
		{in: "push:a/b", wantErr: `invalid namespace "a/b"`},
		{in: "push:-x", wantErr: `invalid namespace "-x"`},
		{in: "push:x:y", wantErr: `invalid namespace "x:y"`},
		{in: "", wantErr: "empty role"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			g, err := ParseGrant(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseGrant(%q) = %v, %v; want error containing %q", tt.in, g, err, tt.wantErr)
				}
				return
			}
			if err != nil || g != tt.want {
				t.Fatalf("ParseGrant(%q) = %v, %v; want %v", tt.in, g, err, tt.want)
			}
		})
	}
}

func TestParseGrants(t *testing.T) {
	tests := []struct {
		in      []string
		want    string
		wantErr string
	}{
		{in: nil, want: ""},
		{in: []string{"push:quarantine,pull:quarantine", "promote:live", "pull:quarantine"}, want: "promote:live pull:quarantine push:quarantine"},
		{in: []string{"pull,", " , push:x"}, want: "pull:* push:x"},
		{in: []string{"pull:live,bogus"}, wantErr: `"bogus"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.in, "|"), func(t *testing.T) {
			g, err := ParseGrants(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(g.Strings(), " "); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func mustGrants(t testing.TB, s ...string) Grants {
	t.Helper()
	g, err := ParseGrants(s)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestAllows(t *testing.T) {
	tests := []struct {
		grants string
		role   Role
		ns     string
		want   bool
	}{
		{"push:quarantine", RolePush, "quarantine", true},
		{"push:quarantine", RolePull, "quarantine", false},
		{"push:quarantine", RolePush, "live", false},
		{"pull", RolePull, "anything", true},
		{"pull", RolePush, "anything", false},
		{"admin", RolePromote, "live", true},
		{"", RolePull, "live", false},
		{"promote:live,pull:live", RolePromote, "live", true},
		{"metrics", RoleMetrics, AllNamespaces, true},
		{"admin", RoleMetrics, AllNamespaces, true},
		{"pull,push,promote", RoleMetrics, AllNamespaces, false},
		{"metrics", RolePull, "live", false},
	}
	for _, tt := range tests {
		if got := mustGrants(t, tt.grants).Allows(tt.role, tt.ns); got != tt.want {
			t.Errorf("%q.Allows(%s, %s) = %v, want %v", tt.grants, tt.role, tt.ns, got, tt.want)
		}
	}
}

func TestIntersectAndCovers(t *testing.T) {
	tests := []struct {
		a, b, want string
	}{
		{"push:quarantine,pull:live", "push:quarantine", "push:quarantine"},
		{"pull", "pull:live,push:live", "pull:live"},
		{"pull:live", "pull", "pull:live"},
		{"admin", "pull:live,push:x", "pull:live push:x"},
		{"pull:live", "admin", "pull:live"},
		{"pull:live", "pull:quarantine", ""},
		{"push:live", "pull:live", ""},
		{"metrics,pull:live", "admin", "metrics:* pull:live"},
		{"metrics", "pull", ""},
	}
	for _, tt := range tests {
		a, b := mustGrants(t, tt.a), mustGrants(t, tt.b)
		if got := strings.Join(a.Intersect(b).Strings(), " "); got != tt.want {
			t.Errorf("%q ∩ %q = %q, want %q", tt.a, tt.b, got, tt.want)
		}
		if got := strings.Join(b.Intersect(a).Strings(), " "); got != tt.want {
			t.Errorf("%q ∩ %q = %q, want %q", tt.b, tt.a, got, tt.want)
		}
	}
	covers := []struct {
		have, g string
		want    bool
	}{
		{"pull", "pull:live", true},
		{"pull:live", "pull", false},
		{"pull:live", "pull:live", true},
		{"admin", "admin", true},
		{"pull,push,promote", "admin", false},
		{"push:quarantine", "pull:quarantine", false},
		{"admin", "metrics", true},
		{"metrics", "metrics", true},
		{"pull,push,promote", "metrics", false},
	}
	for _, tt := range covers {
		g, err := ParseGrant(tt.g)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustGrants(t, tt.have).Covers(g); got != tt.want {
			t.Errorf("%q.Covers(%s) = %v, want %v", tt.have, tt.g, got, tt.want)
		}
	}
}

func TestGrantsJSON(t *testing.T) {
	g := mustGrants(t, "push:quarantine,admin")
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `["admin:*","push:quarantine"]` {
		t.Fatalf("JSON %s", b)
	}
	var back Grants
	if err := json.Unmarshal(b, &back); err != nil || !slices.Equal(back, g) {
		t.Fatalf("round trip: %v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`["admin:live"]`), &back); err == nil {
		t.Fatal("admin:live decoded")
	}
	if _, err := json.Marshal(Grants{{Role: "root", Namespace: "*"}}); err == nil {
		t.Fatal("invalid grant encoded")
	}
}

func FuzzParseGrant(f *testing.F) {
	for _, s := range []string{"push:quarantine", "pull", "admin", "admin:live", "x:", ":", "pull:a.b-c_d", ","} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGrant(s)
		if err != nil {
			return
		}
		if err := g.Validate(); err != nil {
			t.Fatalf("ParseGrant(%q) = %v, which does not validate: %v", s, g, err)
		}
		back, err := ParseGrant(g.String())
		if err != nil || back != g {
			t.Fatalf("round trip of %q: %v, %v", g, back, err)
		}
		gs, err := ParseGrants([]string{s, s})
		if err != nil || len(gs) != 1 || gs[0] != g {
			t.Fatalf("ParseGrants(%q twice) = %v, %v", s, gs, err)
		}
	})
}
