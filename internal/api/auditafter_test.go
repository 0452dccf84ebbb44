package api

import (
	"fmt"
	"strings"
	"testing"
)

// TestAuditRouteAfter: after=SEQ reads forward, oldest first, in pages
// that join without a gap or a repeat, with the action filter; a page past
// the head is empty and keeps its after; bad input names the field.
func TestAuditRouteAfter(t *testing.T) {
	log, h, page := auditFixture(t, 30, 10)
	walk := func(filter string) (seqs []int64, pages int) {
		for after := int64(0); ; pages++ {
			p := page(fmt.Sprintf("?after=%d&limit=7%s", after, filter))
			if len(p.Entries) == 0 {
				if p.NextAfter != after && filter == "" {
					t.Errorf("an empty page moved after from %d to %d", after, p.NextAfter)
				}
				return seqs, pages
			}
			for _, e := range p.Entries {
				seqs = append(seqs, e.Seq)
			}
			after = p.NextAfter
		}
	}
	seqs, pages := walk("")
	if len(seqs) != 30 || pages != 5 {
		t.Fatalf("forward walk: %d entries in %d pages: %v", len(seqs), pages, seqs)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("forward walk out of order at %d: %v", i, seqs)
		}
	}
	if seqs, _ := walk("&action=bypass_refused"); fmt.Sprint(seqs) != "[10 20 30]" {
		t.Errorf("forward walk of the refused bypasses: %v", seqs)
	}
	if p := page("?after=30"); len(p.Entries) != 0 || p.NextAfter != 30 || p.Head != 30 {
		t.Errorf("after the head: %+v", p)
	}
	for query, field := range map[string]string{"?after=-1": "after", "?after=x": "after", "?after=1&limit=0": "limit", "?after=1&before=3": "after and before", "?after=1&action=dance": "action"} {
		code, body := get(t, h, "/api/v1/audit"+query)
		if code != 400 || !strings.Contains(string(body), `"message": "`+field) {
			t.Errorf("%s: %d %s, want 400 naming %s", query, code, body, field)
		}
	}
	nonAdmin := Handler(Options{Gate: &fakeGate{}, Audit: log, Authorize: allowOnly("pull quarantine")})
	if code, _ := get(t, nonAdmin, "/api/v1/audit?after=0"); code != 403 {
		t.Errorf("without admin: %d, want 403", code)
	}
}
