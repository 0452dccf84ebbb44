package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// fromRow converts River's job row to the package's Job, moving the unique
// key out of the args.
func fromRow(r *rivertype.JobRow) Job {
	j := Job{
		ID: r.ID, Kind: r.Kind, Queue: r.Queue, State: State(r.State),
		Args: json.RawMessage(r.EncodedArgs), Attempt: r.Attempt, MaxAttempts: r.MaxAttempts,
		CreatedAt: r.CreatedAt, ScheduledAt: r.ScheduledAt,
	}
	if r.AttemptedAt != nil {
		j.AttemptedAt = *r.AttemptedAt
	}
	if r.FinalizedAt != nil {
		j.FinalizedAt = *r.FinalizedAt
	}
	for _, e := range r.Errors {
		j.Errors = append(j.Errors, AttemptError{At: e.At, Attempt: e.Attempt, Error: e.Error})
	}
	if out := r.Output(); len(out) > 0 {
		j.Output = json.RawMessage(out)
	}
	if bytes.Contains(r.EncodedArgs, []byte(`"`+uniqueKeyField+`"`)) {
		var m map[string]json.RawMessage
		if json.Unmarshal(r.EncodedArgs, &m) == nil {
			if json.Unmarshal(m[uniqueKeyField], &j.UniqueKey) == nil {
				delete(m, uniqueKeyField)
				if b, err := json.Marshal(m); err == nil {
					j.Args = b
				}
			}
		}
	}
	return j
}

// uniqueArgs carries EnqueueOptions.UniqueKey into River: the encoded args
// are the job's own fields plus uniqueKeyField, and River's `river:"unique"`
// tag makes only that field count for uniqueness (with the kind). Handlers
// decode the same JSON into their args type, which ignores the extra field.
type uniqueArgs struct {
	UniqueKey string `json:"drydock_unique_key" river:"unique"`
	args      JobArgs
}

func (u uniqueArgs) Kind() string { return u.args.Kind() }

func (u uniqueArgs) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(u.args)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, fmt.Errorf("job args of kind %q must encode as a JSON object", u.args.Kind())
	}
	if _, ok := m[uniqueKeyField]; ok {
		return nil, fmt.Errorf("job args of kind %q use reserved field %q", u.args.Kind(), uniqueKeyField)
	}
	key, err := json.Marshal(u.UniqueKey)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	out := append([]byte(`{"`+uniqueKeyField+`":`), key...)
	if len(m) > 0 {
		out = append(out, ',')
	}
	return append(out, b[1:]...), nil
}

// backoffPolicy adapts WithRetryBackoff to River's ClientRetryPolicy. River
// schedules on the wall clock, so the retry time is too.
type backoffPolicy struct {
	backoff func(attempt int) time.Duration
}

func (p backoffPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(p.backoff(job.Attempt))
}
