package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/drydock-project/drydock/internal/api"
)

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Code    string
	Message string
	// Body is the answer's JSON, for errors that carry more (a policy's
	// problems).
	Body []byte
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code) }

// call calls the API in-process as the request's principal: method on
// path with query q, the JSON of body when not nil, decoding the answer
// into out.
func (u *UI) call(r *http.Request, method, path string, q url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	target := path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(r.Context(), method, target, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.RemoteAddr, req.Host = r.RemoteAddr, r.Host
	rec := &answer{header: http.Header{}}
	u.o.API.ServeHTTP(rec, req)
	if rec.code >= 300 {
		var eb api.ErrorBody
		if err := json.Unmarshal(rec.body.Bytes(), &eb); err != nil || eb.Error.Message == "" {
			return &apiError{Status: rec.code, Code: "INTERNAL", Message: fmt.Sprintf("%s %s answered %d", method, path, rec.code)}
		}
		return &apiError{Status: rec.code, Code: eb.Error.Code, Message: eb.Error.Message, Body: rec.body.Bytes()}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// answer is the API's answer to an in-process call, held in memory (what
// httptest.ResponseRecorder does for tests, without that test package in
// the server).
type answer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (a *answer) Header() http.Header { return a.header }

func (a *answer) WriteHeader(code int) {
	if a.code == 0 {
		a.code = code
	}
}

func (a *answer) Write(p []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.body.Write(p)
}
