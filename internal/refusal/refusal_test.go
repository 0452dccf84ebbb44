package refusal

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// permanentElsewhere is a permanent error that is not a *Error: IsPermanent
// must classify by the method alone, as the gate does.
type permanentElsewhere struct{}

func (permanentElsewhere) Error() string   { return "elsewhere" }
func (permanentElsewhere) Permanent() bool { return true }

type transient struct{}

func (transient) Error() string   { return "transient" }
func (transient) Permanent() bool { return false }

func TestError(t *testing.T) {
	cause := errors.New("limit exceeded")
	tests := []struct {
		name      string
		err       error
		kind      Kind
		isKind    bool
		permanent bool
		text      string
		is        error
	}{
		{name: "hostile", err: &Error{Kind: Hostile, Reason: `layer 1 (sha256:ab): entry "../x": name escapes the image root`, Entry: "../x"},
			kind: Hostile, isKind: true, permanent: true, text: `hostile image: layer 1 (sha256:ab): entry "../x": name escapes the image root`},
		{name: "wrapped twice", err: fmt.Errorf("scanning image sha256:cd: %w", fmt.Errorf("reading: %w", &Error{Kind: Corrupt, Reason: "diff_id mismatch"})),
			kind: Corrupt, isKind: true, permanent: true, text: "scanning image sha256:cd: reading: corrupt image: diff_id mismatch"},
		{name: "New wraps its cause", err: New(OverLimit, "over the package limit: %w", cause),
			kind: OverLimit, isKind: true, permanent: true, text: "over-limit image: over the package limit: limit exceeded", is: cause},
		{name: "no reason: the cause speaks", err: &Error{Kind: Unsupported, Err: fs.ErrNotExist},
			kind: Unsupported, isKind: true, permanent: true, text: "unsupported image: file does not exist", is: fs.ErrNotExist},
		{name: "permanent elsewhere", err: fmt.Errorf("x: %w", permanentElsewhere{}), permanent: true, text: "x: elsewhere"},
		{name: "says it is not permanent", err: transient{}, text: "transient"},
		{name: "plain error", err: errors.New("connection reset"), text: "connection reset"},
		{name: "nil", err: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, ok := KindOf(tt.err)
			if k != tt.kind || ok != tt.isKind {
				t.Errorf("KindOf = %q, %v; want %q, %v", k, ok, tt.kind, tt.isKind)
			}
			if got := IsPermanent(tt.err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tt.permanent)
			}
			if tt.err != nil && tt.err.Error() != tt.text {
				t.Errorf("Error() = %q, want %q", tt.err.Error(), tt.text)
			}
			if tt.is != nil && !errors.Is(tt.err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", tt.err, tt.is)
			}
			if tt.isKind {
				if !errors.Is(tt.err, &Error{Kind: tt.kind}) {
					t.Errorf("errors.Is(err, kind %q) = false", tt.kind)
				}
				for _, other := range Kinds {
					if other != tt.kind && errors.Is(tt.err, &Error{Kind: other}) {
						t.Errorf("errors.Is(err, kind %q) = true", other)
					}
				}
				if !strings.HasPrefix(strings.TrimPrefix(tt.text, tt.text[:strings.Index(tt.text, string(tt.kind))]), string(tt.kind)+" image") {
					t.Errorf("Error() %q does not name the kind", tt.text)
				}
			}
		})
	}
}

// The gate codes against the method, not this package: the interface it
// uses must be satisfied.
var _ interface {
	error
	Permanent() bool
} = (*Error)(nil)
