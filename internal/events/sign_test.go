package events

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	now := time.Unix(1767225600, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"specversion":"1.0","id":"x"}`)
	good := sign(testSecret, ts, body)
	at := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }

	tests := []struct {
		name      string
		secret    []byte
		timestamp string
		signature string
		body      []byte
		maxSkew   time.Duration
		is        error // nil: must verify
		anyErr    bool  // an error that is none of the sentinels
	}{
		{name: "valid", secret: testSecret, timestamp: ts, signature: good, body: body},
		{name: "uppercase hex", secret: testSecret, timestamp: ts, signature: "sha256=" + strings.ToUpper(good[7:]), body: body},
		{name: "within skew, past", secret: testSecret, timestamp: at(-4 * time.Minute), signature: sign(testSecret, at(-4*time.Minute), body), body: body},
		{name: "within skew, future", secret: testSecret, timestamp: at(4 * time.Minute), signature: sign(testSecret, at(4*time.Minute), body), body: body},
		{name: "wrong secret", secret: []byte("other"), timestamp: ts, signature: good, body: body, is: ErrSignatureMismatch},
		{name: "tampered body", secret: testSecret, timestamp: ts, signature: good, body: []byte(`{"specversion":"1.0","id":"y"}`), is: ErrSignatureMismatch},
		{name: "empty body", secret: testSecret, timestamp: ts, signature: good, body: nil, is: ErrSignatureMismatch},
		{name: "timestamp swapped", secret: testSecret, timestamp: at(time.Second), signature: good, body: body, is: ErrSignatureMismatch},
		{name: "old timestamp (replay)", secret: testSecret, timestamp: at(-6 * time.Minute), signature: sign(testSecret, at(-6*time.Minute), body), body: body, is: ErrStaleTimestamp},
		{name: "future timestamp", secret: testSecret, timestamp: at(time.Hour), signature: sign(testSecret, at(time.Hour), body), body: body, is: ErrStaleTimestamp},
		{name: "epoch", secret: testSecret, timestamp: "0", signature: sign(testSecret, "0", body), body: body, is: ErrStaleTimestamp},
		{name: "far future", secret: testSecret, timestamp: "999999999999999999", signature: sign(testSecret, "999999999999999999", body), body: body, is: ErrStaleTimestamp},
		{name: "no prefix", secret: testSecret, timestamp: ts, signature: good[7:], body: body, is: ErrMalformedHeader},
		{name: "other algorithm", secret: testSecret, timestamp: ts, signature: "sha1=" + good[7:], body: body, is: ErrMalformedHeader},
		{name: "short signature", secret: testSecret, timestamp: ts, signature: good[:20], body: body, is: ErrMalformedHeader},
		{name: "not hex", secret: testSecret, timestamp: ts, signature: "sha256=" + strings.Repeat("zz", 32), body: body, is: ErrMalformedHeader},
		{name: "empty signature", secret: testSecret, timestamp: ts, body: body, is: ErrMalformedHeader},
		{name: "empty timestamp", secret: testSecret, signature: good, body: body, is: ErrMalformedHeader},
		{name: "signed timestamp", secret: testSecret, timestamp: "+" + ts, signature: sign(testSecret, "+"+ts, body), body: body, is: ErrMalformedHeader},
		{name: "negative timestamp", secret: testSecret, timestamp: "-5", signature: sign(testSecret, "-5", body), body: body, is: ErrMalformedHeader},
		{name: "fractional timestamp", secret: testSecret, timestamp: ts + ".5", signature: sign(testSecret, ts+".5", body), body: body, is: ErrMalformedHeader},
		{name: "overlong timestamp", secret: testSecret, timestamp: "1" + strings.Repeat("0", 30), signature: good, body: body, is: ErrMalformedHeader},
		{name: "empty secret", secret: nil, timestamp: ts, signature: sign(nil, ts, body), body: body, anyErr: true},
		{name: "zero skew", secret: testSecret, timestamp: ts, signature: good, body: body, maxSkew: -1, anyErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skew := tt.maxSkew
			if skew == 0 {
				skew = 5 * time.Minute
			}
			err := Verify(tt.secret, tt.timestamp, tt.signature, tt.body, now, skew)
			switch {
			case tt.is == nil && !tt.anyErr:
				if err != nil {
					t.Errorf("Verify = %v, want nil", err)
				}
			case tt.anyErr:
				if err == nil || errors.Is(err, ErrSignatureMismatch) || errors.Is(err, ErrStaleTimestamp) || errors.Is(err, ErrMalformedHeader) {
					t.Errorf("Verify = %v, want an argument error", err)
				}
			default:
				if !errors.Is(err, tt.is) {
					t.Errorf("Verify = %v, want %v", err, tt.is)
				}
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	now := time.Unix(1767225600, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"specversion":"1.0"}`)
	f.Add([]byte("k"), ts, sign([]byte("k"), ts, body), body, int64(time.Minute))
	f.Add([]byte("k"), "", "", []byte(nil), int64(0))
	f.Add([]byte(nil), "99999999999999999999", "sha256=", []byte("x"), int64(-1))
	f.Add([]byte("k"), "9223372036854775807", "sha256="+strings.Repeat("0", 64), []byte("{}"), int64(1<<62))
	f.Fuzz(func(t *testing.T, secret []byte, timestamp, signature string, body []byte, skew int64) {
		err := Verify(secret, timestamp, signature, body, now, time.Duration(skew))
		if err != nil {
			return
		}
		// Only a correctly signed, fresh request may pass.
		if len(secret) == 0 || skew <= 0 {
			t.Fatalf("accepted with secret %q and max skew %d", secret, skew)
		}
		if !strings.EqualFold(signature, sign(secret, timestamp, body)) {
			t.Fatalf("accepted signature %q for timestamp %q", signature, timestamp)
		}
		sec, perr := strconv.ParseInt(timestamp, 10, 64)
		if perr != nil || now.Sub(time.Unix(sec, 0)).Abs() > time.Duration(skew) {
			t.Fatalf("accepted timestamp %q", timestamp)
		}
	})
}
