package events

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event types drydock publishes. They are CloudEvents "type" attributes.
const (
	// TypeVerdict is published when the verdict of an image digest changes.
	TypeVerdict = "dev.drydock.verdict.changed"
	// TypePromotion is published when a digest is promoted from quarantine/ to live/.
	TypePromotion = "dev.drydock.image.promoted"
	// TypeBypassRefused is published when a push or copy into live/ that did
	// not go through promotion is refused.
	TypeBypassRefused = "dev.drydock.live.bypass_refused"
	// TypeScanStuck is published when a scan stays pending for too long.
	TypeScanStuck = "dev.drydock.scan.stuck"
	// TypeAdmissionDenied is published when the Kubernetes admission
	// webhook denies a pod or workload (or warns about one in audit-only
	// mode).
	TypeAdmissionDenied = "dev.drydock.kube.admission_denied"
	// TypeRollout is published when a rollout of workloads to a patched
	// image ends (done, rolled back or failed).
	TypeRollout = "dev.drydock.kube.rollout"
)

// Attribute values and headers of the wire format; see the package documentation.
const (
	// SpecVersion is the CloudEvents specification version of every event.
	SpecVersion = "1.0"
	// ContentType is the Content-Type of every delivery (structured content mode).
	ContentType = "application/cloudevents+json; charset=utf-8"
	// DataContentType is the "datacontenttype" attribute of events with data.
	DataContentType = "application/json"
	// HeaderSignature carries "sha256=" and the hex HMAC-SHA256 of timestamp + "." + body.
	HeaderSignature = "X-Drydock-Signature"
	// HeaderTimestamp carries the unix time, in seconds, at which the attempt was sent.
	HeaderTimestamp = "X-Drydock-Timestamp"
)

// ErrUnknownType is returned for an event or receiver type that is not one of
// the Type constants.
var ErrUnknownType = errors.New("unknown event type")

// KnownType reports whether t is one of the Type constants.
func KnownType(t string) bool {
	switch t {
	case TypeVerdict, TypePromotion, TypeBypassRefused, TypeScanStuck, TypeAdmissionDenied, TypeRollout:
		return true
	}
	return false
}

// Event is one occurrence to announce. Type is one of the Type constants.
// Subject names what the event is about, e.g. "live/app@sha256:…"; it may be
// empty. A zero Time means "now" by the dispatcher's clock. Data is encoded
// with encoding/json when the event is published; nil means no data.
type Event struct {
	Type    string
	Subject string
	Time    time.Time
	Data    any
}

// envelope is the CloudEvents v1.0 JSON form of an Event.
type envelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// encoded is a published event ready to send: its body is shared, read-only,
// by every receiver.
type encoded struct {
	id   string
	typ  string
	body []byte
}

// encode validates e and returns its CloudEvents JSON form.
func encode(e Event, source string, now time.Time) (encoded, error) {
	if !KnownType(e.Type) {
		return encoded{}, fmt.Errorf("encoding event: type %q: %w", e.Type, ErrUnknownType)
	}
	t := e.Time
	if t.IsZero() {
		t = now
	}
	env := envelope{
		SpecVersion: SpecVersion,
		ID:          newID(),
		Source:      source,
		Type:        e.Type,
		Subject:     e.Subject,
		Time:        t.UTC().Format(time.RFC3339Nano),
	}
	if e.Data != nil {
		data, err := json.Marshal(e.Data)
		if err != nil {
			return encoded{}, fmt.Errorf("encoding data of %s event %q: %w", e.Type, e.Subject, err)
		}
		env.DataContentType = DataContentType
		env.Data = data
	}
	body, err := json.Marshal(env)
	if err != nil {
		return encoded{}, fmt.Errorf("encoding %s event %q: %w", e.Type, e.Subject, err)
	}
	return encoded{id: env.ID, typ: e.Type, body: body}, nil
}

// newID returns a random (version 4) UUID.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails; crashes the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
