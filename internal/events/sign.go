package events

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Errors returned by Verify. Receivers should answer all of them the same way
// (401), but may log which one it was.
var (
	// ErrMalformedHeader means the timestamp or signature header is missing or
	// not in the documented format.
	ErrMalformedHeader = errors.New("malformed signature header")
	// ErrSignatureMismatch means the signature does not match the secret,
	// timestamp and body.
	ErrSignatureMismatch = errors.New("signature mismatch")
	// ErrStaleTimestamp means the timestamp is further from now than allowed.
	ErrStaleTimestamp = errors.New("timestamp outside allowed skew")
)

const signaturePrefix = "sha256="

// sign returns the X-Drydock-Signature value for timestamp and body.
func sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return signaturePrefix + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery as a receiver sees it: timestamp and signature are
// the X-Drydock-Timestamp and X-Drydock-Signature headers, body is the raw
// request body. It returns nil only if the signature is the HMAC-SHA256 of
// timestamp + "." + body keyed with secret (compared in constant time) and
// the timestamp is within maxSkew of now, in either direction. An empty
// secret or a maxSkew that is not positive is always an error.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	if len(secret) == 0 {
		return errors.New("verifying signature: empty secret")
	}
	if maxSkew <= 0 {
		return fmt.Errorf("verifying signature: max skew %v is not positive", maxSkew)
	}
	ts, err := parseTimestamp(timestamp)
	if err != nil {
		return err
	}
	hexSig, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok || len(hexSig) != 2*sha256.Size {
		return fmt.Errorf("verifying signature: %s is not %q and 64 hex digits: %w", HeaderSignature, signaturePrefix, ErrMalformedHeader)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("verifying signature: %s: %w", HeaderSignature, ErrMalformedHeader)
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return fmt.Errorf("verifying signature: %w", ErrSignatureMismatch)
	}
	// Checked after the MAC so that the answer says nothing about the clock
	// to someone who cannot sign.
	skew := now.Sub(time.Unix(ts, 0))
	if skew > maxSkew || skew < -maxSkew {
		return fmt.Errorf("verifying signature: timestamp %s is %v from now, more than %v: %w", timestamp, skew, maxSkew, ErrStaleTimestamp)
	}
	return nil
}

// parseTimestamp parses unix seconds written as plain decimal digits.
func parseTimestamp(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, fmt.Errorf("verifying signature: %s %q: %w", HeaderTimestamp, s, ErrMalformedHeader)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("verifying signature: %s %q: %w", HeaderTimestamp, s, ErrMalformedHeader)
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("verifying signature: %s %q: %w", HeaderTimestamp, s, ErrMalformedHeader)
	}
	return ts, nil
}
