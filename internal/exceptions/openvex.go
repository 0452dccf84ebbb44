package exceptions

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// OpenVEX is the document Export writes: OpenVEX v0.2.0 with drydock's
// extensions on statements ("expires", "author", "package"), the form
// gate.LoadExceptions reads, so an export dropped into the exceptions
// directory covers what the records covered.
type OpenVEX struct {
	Context    string      `json:"@context"`
	ID         string      `json:"@id"`
	Author     string      `json:"author"`
	Timestamp  time.Time   `json:"timestamp"`
	Version    int         `json:"version"`
	Tooling    string      `json:"tooling,omitempty"`
	Statements []Statement `json:"statements"`
}

// Statement is one exception.
type Statement struct {
	Vulnerability struct {
		Name string `json:"name"`
	} `json:"vulnerability"`
	Products []struct {
		ID string `json:"@id"`
	} `json:"products"`
	Status          string    `json:"status"`
	Justification   string    `json:"justification"`
	ImpactStatement string    `json:"impact_statement"`
	Timestamp       time.Time `json:"timestamp"`
	Expires         string    `json:"expires"`
	Author          string    `json:"author"`
	Package         string    `json:"package,omitempty"`
	// DrydockID is the record's ID.
	DrydockID int64 `json:"drydock_id"`
}

// Export writes exs as one OpenVEX document, issued by author at now. Its
// @id is derived from the statements, so the same exceptions export to
// the same @id.
func Export(exs []Exception, author string, now time.Time) ([]byte, error) {
	doc := OpenVEX{Context: "https://openvex.dev/ns/v0.2.0", Author: author, Timestamp: now.UTC(), Version: 1,
		Tooling: "drydock", Statements: []Statement{}}
	for _, e := range exs {
		var st Statement
		st.Vulnerability.Name = e.CVE
		if st.Vulnerability.Name == "" {
			st.Vulnerability.Name = "*"
		}
		st.Products = append(st.Products, struct {
			ID string `json:"@id"`
		}{e.Product()})
		st.Status = "not_affected"
		st.Justification, st.ImpactStatement = e.Justification, e.Reason
		st.Timestamp = e.Created.UTC()
		st.Expires = e.Expires.UTC().Format(time.RFC3339Nano)
		st.Author, st.Package, st.DrydockID = e.Author, e.Package, e.ID
		doc.Statements = append(doc.Statements, st)
	}
	body, err := json.Marshal(doc.Statements)
	if err != nil {
		return nil, fmt.Errorf("exporting exceptions: %w", err)
	}
	sum := sha256.Sum256(body)
	doc.ID = "urn:drydock:exceptions:sha256:" + hex.EncodeToString(sum[:])
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("exporting exceptions: %w", err)
	}
	return append(out, '\n'), nil
}
