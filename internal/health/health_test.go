package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type awsLike struct {
	code string
	orig error
}

func (e awsLike) Error() string   { return e.code }
func (e awsLike) Code() string    { return e.code }
func (e awsLike) OrigErr() error  { return e.orig }
func (e awsLike) Message() string { return "" }

func TestUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, pgErr := pgx.Connect(ctx, "postgres://x@"+addr+"/x?sslmode=disable&connect_timeout=2")
	_, dialErr := net.Dial("tcp", addr)
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("manifest invalid"), false},
		{"dial refused", fmt.Errorf("stat: %w", dialErr), true},
		{"pgx connect refused", fmt.Errorf("store: %w", pgErr), true},
		{"refused errno", fmt.Errorf("x: %w", syscall.ECONNREFUSED), true},
		{"postgres shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"aws request error", fmt.Errorf("s3aws: %w", awsLike{code: "RequestError", orig: errors.New("dial")}), true},
		{"aws wrapping a refused dial", awsLike{code: "Other", orig: dialErr}, true},
		{"aws no such key", awsLike{code: "NoSuchKey"}, false},
	} {
		if got := Unavailable(tc.err); got != tc.want {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestGate(t *testing.T) {
	var down atomic.Bool
	c := NewChecker(time.Hour, Probe{Name: "database", Check: func(context.Context) error {
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	}})
	var fail atomic.Bool
	h := c.Gate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.Header().Set("Content-Length", "3")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("500"))
			return
		}
		_, _ = w.Write([]byte("ok"))
	}), func(r *http.Request) bool { return r.URL.Path == "/healthz" })
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}
	if rec := get("/v2/"); rec.Code != 200 {
		t.Fatalf("up: %d", rec.Code)
	}
	// A 500 between probes, with the database up: stays a 500.
	fail.Store(true)
	if rec := get("/v2/"); rec.Code != 500 {
		t.Errorf("a genuine 500 became %d", rec.Code)
	}
	// The database goes down: the failing request is probed and answered 503.
	down.Store(true)
	time.Sleep(1100 * time.Millisecond) // past the reuse of the last probe
	rec := get("/v2/x/manifests/latest")
	var body struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || json.Unmarshal(rec.Body.Bytes(), &body) != nil ||
		len(body.Errors) != 1 || body.Errors[0].Code != "UNAVAILABLE" || !strings.Contains(body.Errors[0].Message, "database unavailable") {
		t.Fatalf("during the outage: %d %q %s", rec.Code, rec.Header(), rec.Body)
	}
	// Known down: answered without running the handler.
	fail.Store(false)
	if rec := get("/api/v1/verdicts"); rec.Code != 503 || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Errorf("API during the outage: %d %s", rec.Code, rec.Body)
	}
	if rec := get("/healthz"); rec.Code != 200 {
		t.Errorf("liveness during the outage: %d", rec.Code)
	}
	down.Store(false)
	if err := c.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec := get("/v2/"); rec.Code != 200 {
		t.Errorf("after recovery: %d", rec.Code)
	}
}
