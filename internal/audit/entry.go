package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Action names what an entry records.
type Action string

// The actions drydock records.
const (
	ActionPush          Action = "push"
	ActionDelete        Action = "delete"
	ActionImport        Action = "import"
	ActionScan          Action = "scan"
	ActionVerdict       Action = "verdict"
	ActionPromotion     Action = "promotion"
	ActionBypassRefused Action = "bypass_refused"
	ActionLoginFailed   Action = "login_failed"
	ActionPolicyChange  Action = "policy_change"
	ActionUserChange    Action = "user_change"
	ActionTokenChange   Action = "token_change"
	// ActionDenied is a request refused for want of a role.
	ActionDenied Action = "denied"
	// ActionGC is a garbage collection (its summary); the tags a
	// retention policy deleted are ActionDelete entries.
	ActionGC Action = "gc"
	// ActionAdmission is a Kubernetes admission the webhook denied (or,
	// in audit-only mode, would have denied).
	ActionAdmission Action = "admission"
	// ActionRollout is a rollout of workloads to another image.
	ActionRollout Action = "rollout"
	// ActionException is an exception created or revoked (detail.op).
	ActionException Action = "exception"
)

// Valid reports whether a is one of the actions above.
func (a Action) Valid() bool {
	switch a {
	case ActionPush, ActionDelete, ActionImport, ActionScan, ActionVerdict, ActionPromotion,
		ActionBypassRefused, ActionLoginFailed, ActionPolicyChange, ActionUserChange, ActionTokenChange, ActionDenied,
		ActionGC, ActionAdmission, ActionRollout, ActionException:
		return true
	}
	return false
}

// Outcomes of a recorded action.
const (
	OutcomeOK      = "ok"
	OutcomeRefused = "refused"
	OutcomeError   = "error"
)

// GenesisHash is the PrevHash of the first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// canonicalTag starts every canonical encoding; it versions the format.
const canonicalTag = "drydock-audit-v1\n"

// ErrInvalidEntry is wrapped by Record when an entry cannot be recorded.
var ErrInvalidEntry = errors.New("invalid audit entry")

// Entry is one audit record. Callers of [Log.Record] fill Actor, Action,
// Repository, Reference, Digest, Outcome and Detail; the log fills Seq, Time,
// PrevHash and Hash.
type Entry struct {
	Seq        int64     `json:"seq"`
	Time       time.Time `json:"time"`
	Actor      string    `json:"actor"`
	Action     Action    `json:"action"`
	Repository string    `json:"repository,omitempty"`
	Reference  string    `json:"reference,omitempty"`
	Digest     string    `json:"digest,omitempty"`
	// Outcome is OutcomeOK, OutcomeRefused or OutcomeError.
	Outcome string `json:"outcome"`
	// Detail is a JSON object with action-specific facts (policy name,
	// finding counts, reason). Record stores it in canonical form; see
	// [Detail] to build one from a Go value.
	Detail   json.RawMessage `json:"detail,omitempty"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// Detail returns the canonical JSON of v, which must encode to a JSON object
// (a map or struct) or null; null gives a nil detail.
func Detail(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding detail: %v", ErrInvalidEntry, err)
	}
	return canonicalDetail(b)
}

// canonicalDetail returns the canonical form of a JSON object (nil for empty
// input or null). It is idempotent.
func canonicalDetail(raw []byte) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: detail is not a JSON object: %v", ErrInvalidEntry, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: detail has data after the JSON object", ErrInvalidEntry)
	}
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding detail: %v", ErrInvalidEntry, err)
	}
	return b, nil
}

// Canonical returns the canonical encoding of e that its hash covers (see the
// package documentation): every field except Hash.
func (e *Entry) Canonical() []byte {
	fields := [...]string{
		strconv.FormatInt(e.Seq, 10),
		e.Time.UTC().Format(time.RFC3339Nano),
		e.Actor,
		string(e.Action),
		e.Repository,
		e.Reference,
		e.Digest,
		e.Outcome,
		string(e.Detail),
		e.PrevHash,
	}
	n := len(canonicalTag)
	for _, f := range fields {
		n += 8 + len(f)
	}
	b := make([]byte, 0, n)
	b = append(b, canonicalTag...)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// ComputeHash returns the hash e should carry: the lowercase hex SHA-256 of
// its canonical encoding.
func (e *Entry) ComputeHash() string {
	sum := sha256.Sum256(e.Canonical())
	return hex.EncodeToString(sum[:])
}

// validate checks the caller-supplied fields of an entry about to be
// recorded. Text must be valid UTF-8 without NUL bytes so every backend
// (PostgreSQL text included) stores it byte for byte.
func (e *Entry) validate() error {
	if e.Actor == "" {
		return fmt.Errorf("%w: no actor", ErrInvalidEntry)
	}
	if !e.Action.Valid() {
		return fmt.Errorf("%w: unknown action %q", ErrInvalidEntry, e.Action)
	}
	switch e.Outcome {
	case OutcomeOK, OutcomeRefused, OutcomeError:
	default:
		return fmt.Errorf("%w: unknown outcome %q", ErrInvalidEntry, e.Outcome)
	}
	for _, f := range [...]struct{ name, v string }{
		{"actor", e.Actor}, {"repository", e.Repository}, {"reference", e.Reference}, {"digest", e.Digest},
	} {
		if !utf8.ValidString(f.v) || strings.IndexByte(f.v, 0) >= 0 {
			return fmt.Errorf("%w: %s %q is not valid UTF-8 text", ErrInvalidEntry, f.name, f.v)
		}
	}
	return nil
}

// Anchor is a point on the chain: an entry's seq and hash. The zero Anchor
// (or seq 0 with GenesisHash) is the empty log.
type Anchor struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// String formats a as "seq:hash", the form [ParseAnchor] reads.
func (a Anchor) String() string {
	h := a.Hash
	if h == "" {
		h = GenesisHash
	}
	return strconv.FormatInt(a.Seq, 10) + ":" + h
}

// ParseAnchor parses "seq:hash" as printed by Anchor.String.
func ParseAnchor(s string) (Anchor, error) {
	seqText, hash, ok := strings.Cut(s, ":")
	if !ok {
		return Anchor{}, fmt.Errorf("parsing audit anchor %q: want seq:hash", s)
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil {
		return Anchor{}, fmt.Errorf("parsing audit anchor %q: %w", s, err)
	}
	a := Anchor{Seq: seq, Hash: strings.ToLower(hash)}
	if err := a.check(); err != nil {
		return Anchor{}, fmt.Errorf("parsing audit anchor %q: %w", s, err)
	}
	return a, nil
}

func (a Anchor) check() error {
	if a.Seq < 0 {
		return fmt.Errorf("negative seq %d", a.Seq)
	}
	if a.Seq == 0 && a.Hash == "" {
		return nil
	}
	if !isHash(a.Hash) {
		return fmt.Errorf("hash %q is not 64 lowercase hex digits", a.Hash)
	}
	if a.Seq == 0 && a.Hash != GenesisHash {
		return fmt.Errorf("seq 0 must have the genesis hash")
	}
	return nil
}

func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
