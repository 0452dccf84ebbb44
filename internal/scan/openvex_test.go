package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
)

var vexStatuses = map[string]bool{VEXNotAffected: true, VEXAffected: true, VEXFixed: true, VEXUnderInvestigation: true}

// vexJustifications are OpenVEX 0.2.0's justification labels.
var vexJustifications = map[string]bool{"component_not_present": true, "vulnerable_code_not_present": true,
	"vulnerable_code_not_in_execute_path": true, "vulnerable_code_cannot_be_controlled_by_adversary": true,
	"inline_mitigations_already_exist": true}

// validateOpenVEX decodes data strictly (no unknown field, one document)
// into the OpenVEX types, checks it re-encodes to the same bytes, and
// checks the spec's requirements: @context v0.2.0, an IRI @id, author,
// timestamp, version >= 1; per statement a vulnerability name, products
// with an @id (subcomponents too), a status from the enum, an
// action_statement when affected, a justification or impact statement
// when not_affected.
func validateOpenVEX(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc VEXDocument
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("decoding OpenVEX strictly: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the OpenVEX document")
	}
	var again bytes.Buffer
	enc := json.NewEncoder(&again)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !bytes.Equal(again.Bytes(), data) {
		bad("the document does not round-trip through the OpenVEX types")
	}
	if doc.Context != "https://openvex.dev/ns/v0.2.0" {
		bad("@context %q", doc.Context)
	}
	if u, err := url.Parse(doc.ID); err != nil || !u.IsAbs() {
		bad("@id %q is not an IRI", doc.ID)
	}
	if doc.Author == "" {
		bad("no author")
	}
	if doc.Timestamp.IsZero() {
		bad("no timestamp")
	}
	if doc.Version < 1 {
		bad("version %d", doc.Version)
	}
	if doc.Statements == nil {
		bad("no statements list")
	}
	for i, st := range doc.Statements {
		if st.Vulnerability.Name == "" {
			bad("statement %d: no vulnerability name", i)
		}
		if len(st.Products) == 0 {
			bad("statement %d: no product", i)
		}
		for _, p := range st.Products {
			if p.ID == "" {
				bad("statement %d: product without @id", i)
			}
			for _, s := range p.Subcomponents {
				if s.ID == "" {
					bad("statement %d: subcomponent without @id", i)
				}
			}
		}
		if !vexStatuses[st.Status] {
			bad("statement %d: status %q", i, st.Status)
		}
		if st.Status == VEXAffected && st.ActionStatement == "" {
			bad("statement %d: affected without action_statement", i)
		}
		if st.Status == VEXNotAffected && !vexJustifications[st.Justification] && st.ImpactStatement == "" {
			bad("statement %d: not_affected without justification or impact_statement", i)
		}
	}
	return errors.Join(errs...)
}

func TestOpenVEX(t *testing.T) {
	data := checkGolden(t, "report.openvex.json", WriteOpenVEX)
	if err := validateOpenVEX(data); err != nil {
		t.Fatalf("invalid OpenVEX:\n%v", err)
	}
	doc := OpenVEXFromReport(goldenReport())
	if doc.Author != "drydock" || !doc.Timestamp.Equal(goldenReport().ScannedAt) || len(doc.Statements) != 2 {
		t.Fatalf("document %+v", doc)
	}
	fixed, unfixed := doc.Statements[0], doc.Statements[1]
	p := fixed.Products[0]
	if fixed.Vulnerability.Name != "CVE-2023-0286" || fixed.Status != VEXAffected ||
		!strings.Contains(fixed.ActionStatement, "1.1.1n-0+deb11u4") || !strings.HasPrefix(p.ID, "pkg:oci/nginx@sha256") ||
		p.Hashes["sha-256"] != strings.Repeat("a", 64) || len(p.Subcomponents) != 1 ||
		p.Subcomponents[0].ID != "pkg:deb/debian/libssl1.1@1.1.1n-0%2Bdeb11u3?arch=amd64&distro=debian-11" {
		t.Errorf("fixable statement %+v", fixed)
	}
	if unfixed.Vulnerability.Name != "CVE-2024-9999" || unfixed.Status != VEXAffected || !strings.Contains(unfixed.StatusNotes, "no_dsa") ||
		unfixed.ActionStatement == "" {
		t.Errorf("unfixed statement %+v", unfixed)
	}
}

func TestOpenVEXValidatorFails(t *testing.T) {
	for name, mutate := range map[string]func(*VEXDocument){
		"context":       func(d *VEXDocument) { d.Context = "https://openvex.dev/ns/v0.1.0" },
		"id":            func(d *VEXDocument) { d.ID = "drydock" },
		"author":        func(d *VEXDocument) { d.Author = "" },
		"status":        func(d *VEXDocument) { d.Statements[0].Status = "vulnerable" },
		"no action":     func(d *VEXDocument) { d.Statements[1].ActionStatement = "" },
		"no product":    func(d *VEXDocument) { d.Statements[0].Products = nil },
		"not_affected":  func(d *VEXDocument) { d.Statements[0].Status = VEXNotAffected },
		"vulnerability": func(d *VEXDocument) { d.Statements[0].Vulnerability.Name = "" },
	} {
		t.Run(name, func(t *testing.T) {
			d := OpenVEXFromReport(goldenReport())
			mutate(&d)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(d); err != nil {
				t.Fatal(err)
			}
			if err := validateOpenVEX(buf.Bytes()); err == nil {
				t.Error("validator accepted a broken document")
			}
		})
	}
	// Unknown fields fail the strict decoder.
	var buf bytes.Buffer
	if err := WriteOpenVEX(&buf, goldenReport()); err != nil {
		t.Fatal(err)
	}
	extra := bytes.Replace(buf.Bytes(), []byte(`"author":`), []byte(`"authour": "x", "author":`), 1)
	if err := validateOpenVEX(extra); err == nil {
		t.Error("validator accepted an unknown field")
	}
}
