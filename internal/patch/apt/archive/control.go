package archive

import (
	"io"

	"github.com/drydock-project/drydock/internal/deb822"
)

// parseStanzas streams the paragraphs of a control file (deb822 sources,
// Release and Packages files; '#' lines are comments, a "." line is an
// empty line) to fn. A malformed
// paragraph is an error naming its line.
func parseStanzas(r io.Reader, fn func(*deb822.Paragraph) error) error {
	return deb822.Parse(r, func(p *deb822.Paragraph, perr *deb822.ParseError) error {
		if perr != nil {
			return perr
		}
		return fn(p)
	}, deb822.WithComments(), deb822.WithDotLines())
}
