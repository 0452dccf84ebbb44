// Package events sends drydock's outgoing events to HTTP webhook receivers.
//
// An [Event] (a verdict change, a promotion, a refused bypass of the live
// gate, a stuck scan) is handed to a [Dispatcher] with [Dispatcher.Publish].
// Publish never blocks: it encodes the event once and puts it on a bounded
// queue per matching [Receiver]. One goroutine per receiver delivers that
// receiver's events in order, retrying network errors, 5xx and 429 responses
// with jittered exponential backoff (a Retry-After header on 429 and 503 is
// honoured, capped at the maximum backoff) and giving up at once on other
// 4xx responses. When a receiver's queue is full the event is dropped for
// that receiver only, counted and logged, so a slow or failing receiver never
// blocks the registry nor the other receivers. [Dispatcher.Stats] reports the
// counters per receiver.
//
// # Wire format
//
// Each delivery is an HTTP POST whose body is one CloudEvents v1.0 event in
// structured content mode (JSON event format):
//
//	Content-Type: application/cloudevents+json; charset=utf-8
//	X-Drydock-Timestamp: 1767225600
//	X-Drydock-Signature: sha256=5d41402abc4b2a76b9719d911017c592...
//
//	{"specversion":"1.0","id":"7f3c…","source":"drydock://registry.example",
//	 "type":"dev.drydock.image.promoted","subject":"live/app@sha256:…",
//	 "time":"2026-01-01T00:00:00.123456789Z","datacontenttype":"application/json",
//	 "data":{…}}
//
// "subject" is omitted when the event has none, and "datacontenttype" and
// "data" are omitted when the event carries no data. The id is random and is
// the same on every retry of one event, so receivers can drop duplicates by
// (source, id).
//
// # Verifying a delivery
//
// Every request is signed with the receiver's own secret. X-Drydock-Timestamp
// holds the unix time in seconds at which this attempt was sent, and
// X-Drydock-Signature holds "sha256=" followed by the lowercase hex
// HMAC-SHA256, keyed with the secret, of
//
//	timestamp + "." + body
//
// where body is the exact request body, byte for byte. A receiver should:
//
//  1. read the raw body before parsing it;
//  2. recompute the HMAC over the timestamp header, a ".", and the raw body;
//  3. compare it with the signature header in constant time;
//  4. reject the request when the timestamp is further than a few minutes
//     from its own clock, so that a captured request cannot be replayed later;
//  5. optionally remember recent (source, id) pairs to drop duplicates.
//
// Go receivers can call [Verify], which does steps 2 to 4:
//
//	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
//	...
//	err = events.Verify(secret, r.Header.Get(events.HeaderTimestamp),
//		r.Header.Get(events.HeaderSignature), body, time.Now(), 5*time.Minute)
//	if err != nil {
//		http.Error(w, "bad signature", http.StatusUnauthorized)
//		return
//	}
//
// A receiver answers with any 2xx status to acknowledge the event. Redirects
// are not followed by the default HTTP client, and count as a permanent
// failure.
package events
