package registry

import (
	"io"
	"net/http"
	"strconv"
	"sync"
)

// InternalHost names the registry in references drydock's own components
// read and write through Transport, which never resolves it.
const InternalHost = "drydock.internal"

// Transport returns an http.RoundTripper that serves requests with the
// registry's own handler, in process: clients such as go-containerregistry's
// remote package read images through it without a network connection and
// without the server's middleware (authentication, the live/ guard). The
// host in request URLs is ignored. Response bodies stream: a large blob is
// never held in memory.
func (r *Registry) Transport() http.RoundTripper { return handlerTransport{h: r} }

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, body: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				w.WriteHeader(http.StatusInternalServerError)
				_ = pw.CloseWithError(io.ErrUnexpectedEOF)
				return
			}
			w.WriteHeader(http.StatusOK) // a handler that wrote nothing
			_ = pw.Close()
		}()
		if req.Body == nil {
			req.Body = http.NoBody
		}
		t.h.ServeHTTP(w, req)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		_ = pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	resp := &http.Response{
		Status:        http.StatusText(w.code),
		StatusCode:    w.code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          pr,
		ContentLength: -1,
		Request:       req,
	}
	if n, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		resp.ContentLength = n
	}
	if req.Method == http.MethodHead {
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		resp.Body = http.NoBody
	}
	return resp, nil
}

// pipeWriter is the http.ResponseWriter of an in-process request: the
// header is handed over at WriteHeader, the body through a pipe.
type pipeWriter struct {
	header http.Header
	sent   http.Header
	body   *io.PipeWriter
	code   int
	once   sync.Once
	ready  chan struct{}
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	w.once.Do(func() {
		w.code = code
		w.sent = w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}
