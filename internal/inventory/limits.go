package inventory

import (
	"errors"
	"fmt"

	"github.com/drydock-project/drydock/internal/deb822"
	"github.com/drydock-project/drydock/internal/refusal"
)

// Defaults of the cost limits of one analysis (see WithMaxPackages,
// WithMaxDatabaseBytes and WithMaxFileSize).
const (
	// DefaultMaxPackages is far above any real image (a Debian desktop
	// has about 3,000 packages) and far below what exhausts memory.
	DefaultMaxPackages = 20_000
	// DefaultMaxDatabaseBytes bounds the database files one analyzer reads
	// in all (a 20,000-package dpkg status is about 40 MB).
	DefaultMaxDatabaseBytes = 128 << 20
)

// WithMaxPackages bounds the installed packages an analyzer reads
// (DefaultMaxPackages unless set): it stops at the first package past the
// limit with a refusal.OverLimit error, so that a database of a million
// fake entries costs no more than the limit.
func WithMaxPackages(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("max packages %d: must be positive", n)
		}
		o.maxPackages = n
		return nil
	}
}

// WithMaxDatabaseBytes bounds the bytes of all the database files an
// analyzer reads (DefaultMaxDatabaseBytes unless set), checked from their
// sizes before any is read: past it, a refusal.OverLimit error.
func WithMaxDatabaseBytes(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("max database bytes %d: must be positive", n)
		}
		o.maxBytes = n
		return nil
	}
}

// budget counts what one Analyze call has read against the limits.
type budget struct {
	maxPackages, packages int
	maxBytes, bytes       int64
}

func (o options) budget() *budget {
	b := &budget{maxPackages: o.maxPackages, maxBytes: o.maxBytes}
	if b.maxPackages <= 0 {
		b.maxPackages = DefaultMaxPackages
	}
	if b.maxBytes <= 0 {
		b.maxBytes = DefaultMaxDatabaseBytes
	}
	return b
}

// file accounts for size bytes of the database file name (what names the
// files in the error: a path or a directory).
func (b *budget) file(what string, size int64) error {
	b.bytes += size
	if b.bytes > b.maxBytes {
		return &refusal.Error{Kind: refusal.OverLimit, Entry: what,
			Reason: fmt.Sprintf("over the package database limit: %s makes %d bytes of package databases, limit %d", what, b.bytes, b.maxBytes)}
	}
	return nil
}

// pkg accounts for one installed package read from db.
func (b *budget) pkg(db string) error {
	b.packages++
	if b.packages > b.maxPackages {
		return &refusal.Error{Kind: refusal.OverLimit, Entry: db,
			Reason: fmt.Sprintf("over the package limit: more than %d installed packages (reading %s), limit %d", b.maxPackages, db, b.maxPackages)}
	}
	return nil
}

// overFileSize is the refusal of one database file larger than the
// analyzer reads.
func overFileSize(name string, size, max int64) error {
	return &refusal.Error{Kind: refusal.OverLimit, Entry: name,
		Reason: fmt.Sprintf("over the package database limit: %s is %d bytes, limit %d", name, size, max)}
}

// parseErr wraps an error parsing the database file name of kind (dpkg,
// apk): a refusal as it is; a line too long for the parser makes the
// database unreadable on every try (refusal.Unverifiable); anything else
// (a read of the file that failed) is returned as it is.
func parseErr(kind, name string, err error) error {
	var r *refusal.Error
	switch {
	case errors.As(err, &r):
		return err
	case errors.Is(err, deb822.ErrLineTooLong):
		return &refusal.Error{Kind: refusal.Unverifiable, Entry: name,
			Reason: fmt.Sprintf("parsing %s database %s: %v", kind, name, err), Err: err}
	}
	return fmt.Errorf("parsing %s database %s: %w", kind, name, err)
}
