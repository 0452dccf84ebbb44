package scan

import (
	"testing"

	"github.com/openvex/go-vex/pkg/vex"
)

// TestOpenVEXParsesWithGoVex reads drydock's OpenVEX output with the
// OpenVEX project's own Go library (a test-only dependency: the writer
// itself uses small local types to keep go-vex's dependencies out of the
// binary).
func TestOpenVEXParsesWithGoVex(t *testing.T) {
	data := checkGolden(t, "report.openvex.json", WriteOpenVEX)
	doc, err := vex.Parse(data)
	if err != nil {
		t.Fatalf("go-vex cannot parse drydock's OpenVEX: %v", err)
	}
	ours := OpenVEXFromReport(goldenReport())
	if doc.ID != ours.ID || doc.Author != "drydock" || len(doc.Statements) != len(ours.Statements) {
		t.Fatalf("go-vex read id=%q author=%q statements=%d, want %q drydock %d",
			doc.ID, doc.Author, len(doc.Statements), ours.ID, len(ours.Statements))
	}
	for i, st := range doc.Statements {
		if st.Vulnerability.Name == "" || len(st.Products) == 0 || st.Status == "" {
			t.Errorf("statement %d incomplete as go-vex reads it: %+v", i, st)
		}
		if st.Status == vex.StatusAffected && st.ActionStatement == "" {
			t.Errorf("statement %d: affected without an action statement", i)
		}
		if err := st.Validate(); err != nil {
			t.Errorf("statement %d fails go-vex validation: %v", i, err)
		}
	}
}
